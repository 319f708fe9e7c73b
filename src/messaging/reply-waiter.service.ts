import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import { ExpiringMap } from '../common/expiring-map.js';
import { RunnerConfig } from '../config/runner-config.js';
import { MESSAGE_BUS, type BusSubscription, type MessageBus } from './message-bus.js';
import { egressSubject, type EgressMessage, type MessageEnvelope } from './message-envelope.js';

/** Most replies remembered for repeated message ids (per replica); the oldest go first. */
export const RECENT_REPLIES_MAX = 10_000;

/** What a caller waits for: the reply to one message id on one channel, for one session. */
export interface ReplyRef {
  /** The channel's egress subject: message ids are unique per channel, not across channels. */
  subject: string;
  messageId: string;
  /** Only this session's reply answers: another user reusing the id never gets it. */
  sessionKey: string;
}

export interface ReplyWait {
  reply: Promise<EgressMessage>;
  /** Stops waiting (the publish failed); the promise then never settles. */
  cancel(): void;
}

interface Waiter {
  sessionKey: string;
  resolve: (m: EgressMessage) => void;
  timer: NodeJS.Timeout;
}

export function replyRef(e: MessageEnvelope): ReplyRef {
  return {
    subject: egressSubject(e.env, e.tenant, e.team, e.channel),
    messageId: e.id,
    sessionKey: e.sessionKey,
  };
}

const keyOf = (subject: string, messageId: string) => `${subject}|${messageId}`;

/**
 * Lets a webhook wait for the replies to its message. Every replica listens to egress (not as a
 * queue group), so the reply reaches the replica that holds the HTTP request whichever one ran it.
 *
 * It also remembers the replies that went by for the bus's duplicate window (bounded by count):
 * a repeated message id (a client retrying a `?wait=true` call) is de-duplicated by the bus or the
 * session store and runs no flow, so no new reply comes; the caller is answered with the
 * remembered one at once. A repeat of a message that is still running waits for its reply, as the
 * first caller does. Past the window, or once evicted, a repeat gets the 504 after the timeout.
 */
@Injectable()
export class ReplyWaiter implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Callers per reply key: nearly always one (a list, not a Set, costs a fraction to make). */
  private readonly waiters = new Map<string, Waiter[]>();
  private recent: ExpiringMap<string, EgressMessage>;
  private readonly recentTtlMs: number;
  private recentMaxValue = RECENT_REPLIES_MAX;
  private sub?: BusSubscription;

  constructor(
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    config: RunnerConfig,
  ) {
    this.recentTtlMs = config.GREENTIC_NATS_DUPLICATE_WINDOW_S * 1000;
    this.recent = new ExpiringMap(this.recentMaxValue, this.recentTtlMs);
  }

  /** Bound of the remembered replies (settable for tests; setting it forgets them). */
  get recentMax(): number {
    return this.recentMaxValue;
  }
  set recentMax(n: number) {
    this.recentMaxValue = n;
    this.recent = new ExpiringMap(n, this.recentTtlMs);
  }

  async onApplicationBootstrap(): Promise<void> {
    this.sub = await this.bus.subscribe<EgressMessage>('greentic.messaging.egress.>', async (msg) => {
      const m = msg.data;
      if (!m || typeof m.inReplyTo !== 'string') return;
      const key = keyOf(msg.subject, m.inReplyTo);
      this.remember(key, m);
      const list = this.waiters.get(key);
      if (!list) return;
      const rest = list.filter((w) => w.sessionKey !== m.sessionKey);
      if (rest.length === 0) this.waiters.delete(key);
      else if (rest.length !== list.length) this.waiters.set(key, rest);
      for (const w of list) {
        if (w.sessionKey !== m.sessionKey) continue;
        clearTimeout(w.timer);
        w.resolve(m);
      }
    });
  }

  /**
   * Register before publishing, so a fast reply cannot slip past. A reply already seen for this
   * message id and session answers at once.
   */
  expect(ref: ReplyRef, timeoutMs: number): ReplyWait {
    const key = keyOf(ref.subject, ref.messageId);
    const seen = this.recentReply(key, ref.sessionKey);
    if (seen) return { reply: Promise.resolve(seen), cancel: () => undefined };
    let waiter!: Waiter;
    const remove = () => {
      const list = this.waiters.get(key);
      if (!list) return;
      const rest = list.filter((w) => w !== waiter);
      if (rest.length === 0) this.waiters.delete(key);
      else this.waiters.set(key, rest);
    };
    const reply = new Promise<EgressMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(
          new GreenticError(
            'reply_timeout',
            `no reply within ${timeoutMs} ms; it will still be delivered through egress`,
            504,
            { messageId: ref.messageId },
          ),
        );
      }, timeoutMs);
      waiter = { sessionKey: ref.sessionKey, resolve, timer };
    });
    const list = this.waiters.get(key);
    if (list) list.push(waiter);
    else this.waiters.set(key, [waiter]);
    return {
      reply,
      cancel: () => {
        clearTimeout(waiter.timer);
        remove();
      },
    };
  }

  /** Callers waiting now. */
  get pending(): number {
    let n = 0;
    for (const list of this.waiters.values()) n += list.length;
    return n;
  }

  /** Replies remembered now. */
  get remembered(): number {
    return this.recent.size;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.unsubscribe();
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    this.recent.clear();
  }

  /** A re-published reply (a redelivery) counts from now. */
  private remember(key: string, msg: EgressMessage): void {
    this.recent.set(key, msg);
  }

  private recentReply(key: string, sessionKey: string): EgressMessage | undefined {
    const msg = this.recent.get(key);
    return msg?.sessionKey === sessionKey ? msg : undefined;
  }
}
