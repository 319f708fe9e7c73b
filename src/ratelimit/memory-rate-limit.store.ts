import {
  refilled,
  timeToFull,
  waitFor,
  type BucketRequest,
  type BucketState,
  type RateDecision,
  type RateLimitStore,
} from './rate-limiter.js';

const PRUNE_AT = 10_000;
const PRUNE_EVERY_MS = 1_000;

/** Token buckets in this process: exact for one replica, per replica for several (use Redis then). */
export class MemoryRateLimitStore implements RateLimitStore {
  readonly kind = 'memory';
  private readonly buckets = new Map<string, BucketState & { fullAt: number }>();
  /**
   * When the last prune ran: at most one a second. With more keys in use than PRUNE_AT a prune
   * frees nothing, and one on every call would walk every bucket for every message.
   */
  private lastPruneAt = -Infinity;

  constructor(private readonly now: () => number = Date.now) {}

  async take(requests: readonly BucketRequest[], cost = 1): Promise<RateDecision> {
    return this.takeSync(requests, cost);
  }

  takeSync(requests: readonly BucketRequest[], cost = 1): RateDecision {
    const now = this.now();
    const tokens = requests.map((r) => refilled(this.buckets.get(r.key), r.policy, now));
    let wait = 0;
    requests.forEach((r, i) => (wait = Math.max(wait, waitFor(tokens[i]!, cost, r.policy))));
    if (wait > 0) return { allowed: false, retryAfterMs: wait, remaining: 0 };
    requests.forEach((r, i) => {
      const left = tokens[i]! - cost;
      this.buckets.set(r.key, { tokens: left, at: now, fullAt: now + timeToFull(r.policy) });
    });
    if (this.buckets.size > PRUNE_AT && now - this.lastPruneAt >= PRUNE_EVERY_MS) this.prune(now);
    return {
      allowed: true,
      retryAfterMs: 0,
      remaining: Math.floor(Math.min(...tokens.map((t) => t - cost), Infinity)),
    };
  }

  /** Full buckets hold nothing worth keeping: a missing bucket reads as full. */
  private prune(now: number): void {
    this.lastPruneAt = now;
    for (const [k, b] of this.buckets) if (b.fullAt <= now) this.buckets.delete(k);
  }

  get size(): number {
    return this.buckets.size;
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}
