import { toMillis } from '../common/duration.js';
import type { RateLimitPolicy, RetryDefaults } from './bundle.types.js';

/** The bundle's `rate_limit` (schema-checked already) in normalised form. */
export interface RawRateLimit {
  rate: number;
  per?: number | string;
  burst?: number;
}

export interface RawRetry {
  max_attempts?: number;
  backoff_ms?: number;
}

/** `{ rateLimit }` for a bundle `rate_limit`, `{}` without one (spread into a binding). */
export function rateLimitOf(raw: RawRateLimit | undefined): { rateLimit?: RateLimitPolicy } {
  if (!raw) return {};
  return { rateLimit: { rate: raw.rate, perMs: toMillis(raw.per) ?? 1_000, burst: raw.burst ?? raw.rate } };
}

/** `{ retry }` for a bundle `retry`, `{}` without one. */
export function retryOf(raw: RawRetry | undefined): { retry?: RetryDefaults } {
  if (!raw) return {};
  return { retry: { maxAttempts: raw.max_attempts ?? 3, backoffMs: raw.backoff_ms ?? 100 } };
}
