import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import { ExpiringMap } from '../common/expiring-map.js';
import { replicaIdOf, RunnerConfig } from '../config/runner-config.js';
import { MESSAGE_BUS, type BusSubscription, type MessageBus } from '../core/message-bus.js';
import {
  messageDedupeId,
  type DuplicateNotice,
  type EgressMessage,
  type MessageEnvelope,
} from '../core/message-envelope.js';
import { egressSubject, replySubject } from '../core/subjects.js';

/** Most replies remembered for repeated message ids (per replica); the oldest go first. */
export const RECENT_REPLIES_MAX = 10_000;

/** What a caller waits for: the reply to one message id on one channel, for one session. */
export interface ReplyRef {
  /** The channel's egress subject. */
  subject: string;
  messageId: string;
  /** Message ids are unique per session: another user reusing the id never gets this reply. */
  sessionKey: string;
}

export interface ReplyWait {
  /**
   * The replies; null when the message is a repeat the session already ran and its replies are
   * not at hand (answered as a duplicate, never run again). Rejects with 504 at the timeout,
   * unless `duplicate()` was called.
   */
  reply: Promise<EgressMessage | null>;
  /** Stops waiting (the publish failed); the promise then never settles. */
  cancel(): void;
  /** Answered already, from what this replica remembers. */
  readonly answered: boolean;
  /**
   * The bus dropped the publish as a repeat: nothing new will run. The first delivery's replies
   * still answer if they come in time; at the timeout the wait resolves null instead of failing
   * with a 504 that would promise a delivery.
   */
  duplicate(): void;
}

interface Waiter {
  resolve: (m: EgressMessage | null) => void;
  timer: NodeJS.Timeout;
  duplicate: boolean;
}

/** What went by for a message: its replies, or the notice that it was refused as a repeat. */
type Remembered = EgressMessage | DuplicateNotice;

export function replyRef(e: MessageEnvelope): ReplyRef {
  return {
    subject: egressSubject(e.env, e.tenant, e.team, e.channel),
    messageId: e.id,
    sessionKey: e.sessionKey,
  };
}

/** Per channel and session: the scope of the bus's and the session store's de-duplication. */
const keyOf = (subject: string, sessionKey: string, messageId: string) =>
  `${subject}|${messageDedupeId(sessionKey, messageId)}`;

const isReply = (m: Remembered): m is EgressMessage => Array.isArray((m as EgressMessage).replies);

/**
 * Lets a webhook wait for the replies to its message. Each replica has its own reply subject
 * (`greentic.messaging.reply.{replica}`), named in the ingress publish of a waiting call; the
 * replica that runs the message publishes the replies there once, so only the replica holding the
 * HTTP request receives them. When that is the replica that ran it, they are handed over in
 * process (`deliver`) instead.
 *
 * It also remembers the replies that came for the bus's duplicate window (bounded by count), per
 * channel, session and message id: a repeated message id from the same session (a client retrying
 * a `?wait=true` call on this replica) is dropped by the bus and runs no flow, so no new reply
 * comes; the caller is answered with the remembered one at once. A repeat of a message that is
 * still running waits for its reply, as the first caller does. A retry on another replica reaches
 * the session's owner, which answers it from the replies stored with the session, or with a
 * duplicate notice past the replay window. Only a message the bus accepted as new can time out
 * with 504.
 */
@Injectable()
export class ReplyWaiter implements OnApplicationBootstrap, OnApplicationShutdown {
  /** Callers per reply key: nearly always one (a list, not a Set, costs a fraction to make). */
  private readonly waiters = new Map<string, Waiter[]>();
  private recent: ExpiringMap<string, Remembered>;
  private readonly recentTtlMs: number;
  private recentMaxValue = RECENT_REPLIES_MAX;
  private readonly subs: BusSubscription[] = [];
  /** This replica's id (GREENTIC_REPLICA_ID). */
  readonly replica: string;
  /** Where this replica's waiting callers get their replies. */
  readonly subject: string;

  constructor(
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    config: RunnerConfig,
  ) {
    this.replica = replicaIdOf(config);
    this.subject = replySubject(this.replica);
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
    this.subs.push(
      await this.bus.subscribe<Remembered>(this.subject, async (msg) => {
        const m = msg.data;
        if (!m || typeof m.inReplyTo !== 'string' || typeof m.sessionKey !== 'string') return;
        if (![m.env, m.tenant, m.team, m.channel].every((t) => typeof t === 'string')) return;
        this.deliver(m);
      }),
    );
  }

  /** Whether a reply subject is this replica's own: its callers can be answered in process. */
  isHere(replyTo: string | undefined): replyTo is string {
    return replyTo === this.subject;
  }

  /**
   * Answers the callers waiting here for a message's replies (or its duplicate notice). The reply
   * subscription calls it for replies sent by other replicas; this replica's own MessageProcessor
   * calls it directly once the replies are committed with the session, so a reply run where it is
   * awaited makes no trip out to NATS and back.
   */
  deliver(m: Remembered): void {
    this.settle(keyOf(egressSubject(m.env, m.tenant, m.team, m.channel), m.sessionKey, m.inReplyTo), m);
  }

  /**
   * Register before publishing, so a fast reply cannot slip past. A reply (or duplicate notice)
   * already seen for this message id and session answers at once.
   */
  expect(ref: ReplyRef, timeoutMs: number): ReplyWait {
    const key = keyOf(ref.subject, ref.sessionKey, ref.messageId);
    const seen = this.recent.get(key);
    if (seen)
      return {
        reply: Promise.resolve(isReply(seen) ? seen : null),
        cancel: () => undefined,
        duplicate: () => undefined,
        answered: true,
      };
    let waiter!: Waiter;
    const remove = () => {
      const list = this.waiters.get(key);
      if (!list) return;
      const rest = list.filter((w) => w !== waiter);
      if (rest.length === 0) this.waiters.delete(key);
      else this.waiters.set(key, rest);
    };
    const reply = new Promise<EgressMessage | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        if (waiter.duplicate) return resolve(null);
        reject(
          new GreenticError(
            'reply_timeout',
            `no reply within ${timeoutMs} ms; the message was accepted and its replies will be delivered through egress`,
            504,
            { messageId: ref.messageId },
          ),
        );
      }, timeoutMs);
      waiter = { resolve, timer, duplicate: false };
    });
    // The timeout can fire before the caller awaits `reply` (its publish still waiting for the
    // broker, or a later message of the same request being published): the 504 reaches the caller
    // when it awaits, instead of surfacing meanwhile as an unhandled rejection that ends the process.
    reply.catch(() => undefined);
    const list = this.waiters.get(key);
    if (list) list.push(waiter);
    else this.waiters.set(key, [waiter]);
    return {
      reply,
      answered: false,
      cancel: () => {
        clearTimeout(waiter.timer);
        remove();
      },
      duplicate: () => {
        waiter.duplicate = true;
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
    await Promise.all(this.subs.splice(0).map((s) => s.unsubscribe()));
    for (const list of this.waiters.values()) for (const w of list) clearTimeout(w.timer);
    this.waiters.clear();
    this.recent.clear();
  }

  /** Remembers what went by (a re-published reply counts from now) and answers its waiters. */
  private settle(key: string, m: Remembered): void {
    let answer: EgressMessage | null;
    if (isReply(m)) {
      this.recent.set(key, m);
      answer = m;
    } else {
      // A notice never hides replies remembered for the same message: they are the better answer.
      const known = this.recent.get(key);
      if (known === undefined) this.recent.set(key, m);
      answer = known !== undefined && isReply(known) ? known : null;
    }
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    for (const w of list) {
      clearTimeout(w.timer);
      w.resolve(answer);
    }
  }
}
