export { RateLimitModule } from './ratelimit.module.js';
export { RateLimitGuard } from './rate-limit.guard.js';
export { RateLimitService, type RateScope } from './rate-limit.service.js';
export { RateLimitedError, CoordinationUnavailableError } from './rate-limit.errors.js';
export { MemoryRateLimitStore } from './memory-rate-limit.store.js';
export { RedisRateLimitStore } from './redis-rate-limit.store.js';
export {
  RATE_LIMIT_STORE,
  type RateLimitStore,
  type RateDecision,
  type BucketRequest,
} from './rate-limiter.js';
