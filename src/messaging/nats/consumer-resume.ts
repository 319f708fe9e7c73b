import type { Logger } from '@nestjs/common';
import type { ConsumerMessages } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';

export interface ResumeOptions {
  /** Consumer name, for the logs. */
  name: string;
  /** Re-creates the streams and consumers the server may have lost (runs before the iterator is replaced). */
  recreate: () => Promise<void>;
  /** After a reconnect, how long the iterator may go without sending a pull before it is replaced. */
  resumeWithinMs?: number;
  logger: Logger;
}

const LOST = new Set(['consumer_not_found', 'stream_not_found', 'consumer_deleted']);

/**
 * Keeps a `consume()` iterator from stalling after a NATS server restart, by closing it so that
 * its pull loop opens a fresh one (whose first pull goes out at once). The caller's loop must
 * re-open the consumer when its `for await` ends without `stop` having been asked for.
 *
 * Why: on a reconnect `@nats-io/jetstream` 3.x checks the consumer with a consumer info before
 * pulling again; when that check fails (the restarted server lost the stream or the consumer, as
 * with memory storage or a wiped store, or its JetStream was not answering yet) it retries only
 * after `jitter(expires)`, 15 to 45 s with the default 30 s `expires`, and pulls nothing
 * meanwhile, even once the bus has re-created the consumer. Every message published to that
 * consumer meanwhile waits, and a `?wait=true` caller gets a 504.
 *
 * Replaced: on a `consumer_not_found`, `stream_not_found` or `consumer_deleted` notification,
 * once `recreate()` has run; and when no pull (`next`) nor heartbeat was seen within
 * `resumeWithinMs` of a reconnect. Returns a function that stops watching.
 */
export function resumeAfterRestart(
  nc: NatsConnection,
  messages: ConsumerMessages,
  opts: ResumeOptions,
): () => void {
  const within = opts.resumeWithinMs ?? 3_000;
  let done = false;
  let lastSign = Date.now();
  let timer: NodeJS.Timeout | undefined;
  let replacing: Promise<void> | undefined;

  const replace = (reason: string): Promise<void> =>
    (replacing ??= (async () => {
      opts.logger.warn({ consumer: opts.name, reason }, 'consumer stalled after a reconnect; re-opening it');
      await opts.recreate().catch(() => undefined);
      if (!done) await messages.close();
    })());

  const stop = () => {
    done = true;
    clearTimeout(timer);
  };

  void (async () => {
    // Ends at the connection's next event after stop(): the status iterator has no public stop.
    for await (const s of nc.status()) {
      if (done) break;
      if (s.type !== 'reconnect') continue;
      const at = Date.now();
      clearTimeout(timer);
      timer = setTimeout(() => {
        if (!done && lastSign < at) void replace(`no pull within ${within} ms of the reconnect`);
      }, within);
      timer.unref();
    }
  })();

  void (async () => {
    for await (const s of messages.status()) {
      if (done) break;
      if (s.type === 'next' || s.type === 'heartbeat') lastSign = Date.now();
      else if (LOST.has(s.type)) void replace(s.type);
    }
  })();

  void messages.closed().then(stop, stop);
  return stop;
}
