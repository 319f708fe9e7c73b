import type { RateLimitPolicy } from '../tenancy/bundle.types.js';

/** One bucket a message must take a token from. */
export interface BucketRequest {
  key: string;
  policy: RateLimitPolicy;
}

export interface RateDecision {
  allowed: boolean;
  /** When denied: how long until every bucket holds enough tokens. */
  retryAfterMs: number;
  /** When allowed: tokens left in the emptiest bucket (whole tokens). */
  remaining: number;
}

/**
 * Where token buckets live: in memory (one replica, the embedded default) or in Redis (every
 * replica shares them). `take` is atomic across all the buckets it is given: either each pays
 * `cost` or none does, so a message refused by its channel does not use up its tenant's budget.
 */
export interface RateLimitStore {
  readonly kind: string;
  take(buckets: readonly BucketRequest[], cost?: number): Promise<RateDecision>;
  close(): Promise<void>;
}

export const RATE_LIMIT_STORE = Symbol('RATE_LIMIT_STORE');

export interface BucketState {
  tokens: number;
  /** Epoch ms of the last update. */
  at: number;
}

/** Tokens in a bucket at `now`: what it held plus the refill since, capped at the burst. */
export function refilled(state: BucketState | undefined, policy: RateLimitPolicy, now: number): number {
  if (!state) return policy.burst;
  const elapsed = Math.max(0, now - state.at);
  return Math.min(policy.burst, state.tokens + (elapsed * policy.rate) / policy.perMs);
}

/** Time until `tokens` grows to `cost`. */
export function waitFor(tokens: number, cost: number, policy: RateLimitPolicy): number {
  return tokens >= cost ? 0 : Math.ceil(((cost - tokens) * policy.perMs) / policy.rate);
}

/** A bucket left alone this long is full again: its state can go. */
export function timeToFull(policy: RateLimitPolicy): number {
  return Math.ceil((policy.burst * policy.perMs) / policy.rate);
}
