import { Injectable, Logger, Optional } from '@nestjs/common';
import { errorText, GreenticError, isPermanentError } from '../common/errors.js';
import { ExpiringMap } from '../common/expiring-map.js';
import { RunnerConfig } from '../config/runner-config.js';
import { deadLetterSubjectOf, parseSubject } from '../core/subjects.js';
import {
  subjectMatches,
  type BusHandler,
  type BusHealth,
  type BusMessage,
  type BusSubscription,
  type MessageBus,
  type PublishAck,
  type PublishOptions,
  type SubscribeOptions,
} from '../core/message-bus.js';
import { promiseOf } from '../common/promise-of.js';

interface Sub {
  pattern: string;
  handler: BusHandler;
  queue?: string;
  maxDeliver: number;
  active: boolean;
}

interface Route {
  plain: Sub[];
  groups: [queue: string, members: Sub[]][];
}

/** JetStream's default, for a bus built without config (unit specs). */
const DEFAULT_DEDUPE_WINDOW_S = 120;
/** De-duplication ids kept at most; past it the oldest go first, even inside the window. */
const MAX_DEDUPE_IDS = 100_000;
/** Subjects whose subscriber lists are remembered; subjects are per channel, so this is plenty. */
const MAX_CACHED_ROUTES = 10_000;

/** A rate limit's own `retryAfterMs` when the error carries one, else exponential backoff. */
function redeliveryDelayMs(err: unknown, attempt: number): number {
  const ra = err instanceof GreenticError ? err.details['retryAfterMs'] : undefined;
  return typeof ra === 'number' && ra > 0 ? Math.min(ra, 60_000) : Math.min(1000, 20 * 2 ** attempt);
}
const DEFAULT_MAX_DELIVER = 5;
// Every publish hands back one of two settled promises instead of making one.
const ACCEPTED: Promise<PublishAck> = Promise.resolve(Object.freeze({ duplicate: false }));
const DUPLICATE: Promise<PublishAck> = Promise.resolve(Object.freeze({ duplicate: true }));

/**
 * The embedded bus: same subjects, queue groups, de-duplication and redelivery semantics as the
 * JetStream bus, inside one process. Nothing survives a restart; use NATS for that.
 */
@Injectable()
export class InProcessBus implements MessageBus {
  readonly kind = 'memory';
  private readonly logger = new Logger(InProcessBus.name);
  private readonly subs: Sub[] = [];
  private readonly rr = new Map<string, number>();
  private readonly routes = new Map<string, Route>();
  /**
   * De-duplication ids of the window, by subject and id. The window is JetStream's
   * (`GREENTIC_NATS_DUPLICATE_WINDOW_S`), which the ReplyWaiter remembers replies for too.
   */
  private readonly seen: ExpiringMap<string, true>;
  private readonly inflight = new Set<Promise<void>>();
  private closed = false;
  private published = 0;
  private duplicates = 0;
  private delivered = 0;

  constructor(@Optional() config?: RunnerConfig) {
    const windowS = config?.GREENTIC_NATS_DUPLICATE_WINDOW_S ?? DEFAULT_DEDUPE_WINDOW_S;
    this.seen = new ExpiringMap<string, true>(MAX_DEDUPE_IDS, windowS * 1000);
  }

  // Not async: the deliveries start here and run on their own, so every publish can hand back a
  // settled promise instead of making one.
  publish(subject: string, data: unknown, opts: PublishOptions = {}): Promise<PublishAck> {
    return promiseOf(() => this.publishNow(subject, data, opts));
  }

  private publishNow(subject: string, data: unknown, opts: PublishOptions): Promise<PublishAck> {
    if (this.closed) return Promise.reject(new Error('bus is closed'));
    // The waiting replica's copy goes even when the publish is a repeat (a replay answers it).
    if (opts.replyTo !== undefined) this.publishNow(opts.replyTo, data, { headers: opts.headers ?? {} });
    if (opts.msgId !== undefined) {
      if (!this.seen.addIfAbsent(`${subject}|${opts.msgId}`, true)) {
        this.duplicates++;
        return DUPLICATE;
      }
    }
    this.published++;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.msgId !== undefined) headers['Nats-Msg-Id'] = opts.msgId;
    // One payload shared by every subscriber, frozen: on NATS nobody shares objects with the
    // publisher, and here a subscriber (or the publisher, later) that mutates one throws instead
    // of changing what the others see. A JSON round trip per delivery would copy instead, at a
    // cost docs/performance.md gives.
    const payload = deepFreeze(data);
    const publishedAt = Date.now();
    for (const target of this.targets(subject))
      this.deliver(target, { subject, data: payload, headers, deliveryCount: 1, publishedAt });
    return ACCEPTED;
  }

  async subscribe<T>(
    pattern: string,
    handler: BusHandler<T>,
    opts: SubscribeOptions = {},
  ): Promise<BusSubscription> {
    const sub: Sub = {
      pattern,
      handler: handler as BusHandler,
      queue: opts.queue,
      maxDeliver: opts.maxDeliver ?? DEFAULT_MAX_DELIVER,
      active: true,
    };
    this.subs.push(sub);
    this.routes.clear();
    return {
      unsubscribe: async () => {
        sub.active = false;
        const i = this.subs.indexOf(sub);
        if (i >= 0) this.subs.splice(i, 1);
        this.routes.clear();
      },
    };
  }

  async health(): Promise<BusHealth> {
    return {
      up: !this.closed,
      details: {
        kind: this.kind,
        subscriptions: this.subs.length,
        inflight: this.inflight.size,
        published: this.published,
        duplicates: this.duplicates,
        delivered: this.delivered,
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    this.subs.length = 0;
    this.routes.clear();
  }

  /** One subscriber per queue group (round robin), every plain subscriber. */
  private targets(subject: string): Sub[] {
    let route = this.routes.get(subject);
    if (!route) {
      route = this.route(subject);
      if (this.routes.size >= MAX_CACHED_ROUTES) this.routes.clear();
      this.routes.set(subject, route);
    }
    const out = route.plain.slice();
    for (const [q, members] of route.groups) {
      const n = this.rr.get(q) ?? 0;
      this.rr.set(q, n + 1);
      out.push(members[n % members.length]!);
    }
    return out;
  }

  /** Which subscriptions a subject reaches; cached per subject until a subscription changes. */
  private route(subject: string): Route {
    const plain: Sub[] = [];
    const groups = new Map<string, Sub[]>();
    for (const s of this.subs) {
      if (!s.active || !subjectMatches(s.pattern, subject)) continue;
      if (s.queue === undefined) plain.push(s);
      else {
        const g = groups.get(s.queue) ?? [];
        g.push(s);
        groups.set(s.queue, g);
      }
    }
    return { plain, groups: [...groups] };
  }

  /**
   * Hands `msg` to one subscriber, in flight until its handler settles. The first attempt makes one
   * promise beside the handler's own (no async wrapper): promises are what the context manager's
   * hook costs per message when tracing is on. Failures go on in `redeliver`.
   */
  private deliver(sub: Sub, msg: BusMessage): void {
    this.delivered++;
    const settled: Promise<void> = promiseOf(() => sub.handler(msg)).then(
      () => {
        this.inflight.delete(settled);
      },
      async (err: unknown) => {
        try {
          await this.redeliver(sub, msg, err);
        } catch (e) {
          this.logger.error(
            { subject: msg.subject, err: errorText(e) },
            'redelivery failed; message dropped',
          );
        } finally {
          // Always: close() waits for this set to empty.
          this.inflight.delete(settled);
        }
      },
    );
    this.inflight.add(settled);
  }

  /**
   * Hands `msg` to the subscribers of its tenant's dead-letter subject in the JetStream bus's shape:
   * `{ subject, error: { code, message }, deliveries, data }`, the code in a `greentic-error`
   * header, so the admin API and the logs read both buses' dead letters alike.
   */
  private deadLetter(msg: BusMessage, err: unknown, deliveries: number): void {
    const error = {
      code: err instanceof GreenticError ? err.code : 'handler_failed',
      message: errorText(err),
    };
    const dlq = deadLetterSubjectOf(msg.subject);
    this.logger.error(
      {
        subject: msg.subject,
        tenant: parseSubject(msg.subject)?.tenant,
        deliveries,
        code: error.code,
        reason: error.message,
        ...(dlq !== undefined ? { dlq } : {}),
      },
      dlq !== undefined ? 'message dead-lettered' : 'message cannot be processed nor dead-lettered; dropped',
    );
    if (dlq === undefined) return;
    const headers = {
      ...msg.headers,
      'greentic-error': error.code,
      'greentic-original-subject': msg.subject,
    };
    const data = { subject: msg.subject, error, deliveries, data: msg.data };
    for (const t of this.targets(dlq))
      this.deliver(t, { ...msg, subject: dlq, data, headers, deliveryCount: 1 });
  }

  /** After a failed first attempt: redeliveries with backoff, then the dead-letter subject. */
  private async redeliver(sub: Sub, msg: BusMessage, firstErr: unknown): Promise<void> {
    let err = firstErr;
    for (let attempt = 1; ; attempt++) {
      if (this.closed || !sub.active) {
        this.logger.warn({ subject: msg.subject, attempts: attempt }, 'redelivery abandoned: bus closing');
        return;
      }
      // As on JetStream: what no redelivery can fix (a refused tenancy, bad input) goes at once.
      if (isPermanentError(err) || attempt >= sub.maxDeliver) {
        this.deadLetter(msg, err, attempt);
        return;
      }
      await new Promise((r) => setTimeout(r, redeliveryDelayMs(err, attempt)));
      try {
        this.delivered++;
        await sub.handler({ ...msg, deliveryCount: attempt + 1 });
        return;
      } catch (e) {
        err = e;
      }
    }
  }
}

/** Freezes plain objects and arrays all the way down (they are the bus's JSON payloads). */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== 'object' || Object.isFrozen(value)) return value;
  Object.freeze(value);
  if (Array.isArray(value)) for (const v of value) deepFreeze(v);
  else for (const k in value) deepFreeze((value as Record<string, unknown>)[k]);
  return value;
}
