import { Injectable, Module, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { MetricService } from 'nestjs-otel';
import { SecretsModule } from '../secrets/secrets.module.js';
import { SecretsService } from '../secrets/secrets.service.js';
import { MetricsController } from './metrics.controller.js';
import { telemetry } from './otel.js';
import { RunnerMetrics } from './runner-metrics.js';

/** Secret reads by tenant, backend and result, read from the secrets caches' own counters. */
@Injectable()
export class SecretsReadMetrics implements OnModuleInit {
  constructor(
    private readonly m: RunnerMetrics,
    private readonly secrets: SecretsService,
  ) {}

  onModuleInit(): void {
    const counter = this.m.metrics.getObservableCounter('greentic_secrets_reads', {
      description: 'Secret reads by tenant, backend and result (hit, fetch, stale, error)',
    });
    counter.addCallback((r) => {
      for (const s of this.secrets.status()) {
        const base = { tenant: s.tenant, backend: s.backend };
        r.observe(s.cache.hits, this.m.labels.bound({ ...base, result: 'hit' }));
        r.observe(s.cache.fetches, this.m.labels.bound({ ...base, result: 'fetch' }));
        r.observe(s.cache.staleServed, this.m.labels.bound({ ...base, result: 'stale' }));
        r.observe(s.cache.errors, this.m.labels.bound({ ...base, result: 'error' }));
      }
    });
  }
}

/**
 * Metrics at `/metrics` and the instruments the runner records (RunnerMetrics). Spans and the
 * per-seam metrics come from the instrumented seams (instrumented-*.ts), which AppModule hands to
 * the modules providing those seams. Nothing here reaches into other modules' objects; the SDK
 * itself is started by `startTelemetry()` (otel.ts) before Nest, and spans and instruments are
 * no-ops when it is off.
 */
@Module({
  imports: [SecretsModule],
  controllers: [MetricsController],
  // nestjs-otel's MetricService on its own, not its OpenTelemetryModule: that module's configure()
  // puts its wide-event middleware on every route (no option turns it off), which brings Nest's
  // middleware layer (middie) onto every webhook, about 5% of a message's CPU; we use no wide events.
  providers: [MetricService, RunnerMetrics, SecretsReadMetrics],
  exports: [MetricService, RunnerMetrics],
})
export class TelemetryModule implements OnApplicationShutdown {
  /** Closing an app exports the spans it queued; the SDK itself lives as long as the process. */
  async onApplicationShutdown(): Promise<void> {
    await telemetry()?.forceFlush();
  }
}
