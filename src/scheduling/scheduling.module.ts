import { Module, type DynamicModule } from '@nestjs/common';
import { RunnerConfig } from '../config/runner-config.js';
import { MetricService } from 'nestjs-otel';
import { usesRedisCoordination } from '../ratelimit/coordination.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { RedisTickLedger } from './redis-tick-ledger.js';
import { MemoryTickLedger, TICK_LEDGER, type TickLedger } from './tick-ledger.js';
import { TimerScheduler } from './timer-scheduler.service.js';
import { TimerProvider } from './timer.provider.js';

/**
 * Timers (bundle `timers:`): the scheduler, its tick ledger (Redis when replicas share the work),
 * and the `timer` messaging provider their channels use. IngressService and MessageProcessor come
 * from the application's `MessagingModule.forRoot(...)` object, given to `forRoot`.
 */
@Module({
  imports: [TenancyModule],
  providers: [
    // nestjs-otel's instruments for this module's own metrics (stateless; one per name process-wide).
    MetricService,
    {
      provide: TICK_LEDGER,
      inject: [RunnerConfig],
      useFactory: (cfg: RunnerConfig): TickLedger | Promise<TickLedger> =>
        usesRedisCoordination(cfg)
          ? RedisTickLedger.connect(cfg.REDIS_URL, cfg.GREENTIC_REDIS_PREFIX)
          : new MemoryTickLedger(),
    },
    TimerScheduler,
    TimerProvider,
  ],
  exports: [TimerScheduler],
})
export class SchedulingModule {
  static forRoot(messaging: DynamicModule): DynamicModule {
    return { module: SchedulingModule, imports: [messaging] };
  }
}
