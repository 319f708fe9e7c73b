import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';

/**
 * A stream's consumers, as the server lists them, without the `null` entries that nats-server
 * before 2.10.3 puts in a page for a consumer that is being deleted at that moment (fixed upstream in
 * nats-server#4669). Debian's nats-server is 2.9.x, and partition owners delete old-epoch consumers
 * while other replicas list them, so the entry is a race we meet, not a corrupt reply.
 */
export async function listConsumers(
  jsm: Pick<JetStreamManager, 'consumers'>,
  stream: string,
): Promise<ConsumerInfo[]> {
  const out: ConsumerInfo[] = [];
  for await (const ci of jsm.consumers.list(stream)) {
    // Typed as never null; the old server's page disagrees.
    if ((ci as ConsumerInfo | null) !== null) out.push(ci);
  }
  return out;
}
