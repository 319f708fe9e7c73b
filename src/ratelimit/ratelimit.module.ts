import { Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import { RunnerConfig } from '../config/runner-config.js';
import { MetricService } from 'nestjs-otel';
import { MemoryRateLimitStore } from './memory-rate-limit.store.js';
import { usesRedisCoordination } from './coordination.js';
import { RateLimitGuard } from './rate-limit.guard.js';
import { RateLimitService } from './rate-limit.service.js';
import { RATE_LIMIT_STORE, type RateLimitStore } from './rate-limiter.js';
import { RedisRateLimitStore } from './redis-rate-limit.store.js';

/**
 * Token-bucket rate limits per tenant and channel (bundle `rate_limit`). MessagingModule imports it
 * for the RateLimitGuard on its webhook and ingress controllers.
 */
@Module({
  providers: [
    // nestjs-otel's instruments for this module's own metrics (stateless; one per name process-wide).
    MetricService,
    {
      provide: RATE_LIMIT_STORE,
      inject: [RunnerConfig],
      useFactory: (cfg: RunnerConfig): RateLimitStore | Promise<RateLimitStore> =>
        usesRedisCoordination(cfg)
          ? RedisRateLimitStore.connect({ url: cfg.REDIS_URL })
          : new MemoryRateLimitStore(),
    },
    RateLimitService,
    RateLimitGuard,
  ],
  exports: [RateLimitService, RateLimitGuard, RATE_LIMIT_STORE],
})
export class RateLimitModule implements OnApplicationShutdown {
  constructor(@Inject(RATE_LIMIT_STORE) private readonly store: RateLimitStore) {}

  async onApplicationShutdown(): Promise<void> {
    await this.store.close();
  }
}
