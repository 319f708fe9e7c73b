import { toMillis } from '../flows/ygtc-loader.js';
import type { RateLimitPolicy, RetryDefaults } from '../tenancy/bundle.types.js';

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

/** Redis when asked, or (`auto`) when sessions are in Redis: several replicas must share claims and buckets. */
export function usesRedisCoordination(cfg: {
  GREENTIC_COORDINATION: string;
  GREENTIC_SESSIONS: string;
}): boolean {
  return (
    cfg.GREENTIC_COORDINATION === 'redis' ||
    (cfg.GREENTIC_COORDINATION === 'auto' && cfg.GREENTIC_SESSIONS === 'redis')
  );
}
