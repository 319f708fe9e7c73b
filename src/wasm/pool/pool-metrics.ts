/**
 * Pool instruments (OpenTelemetry through nestjs-otel): workers, calls in flight and queued calls
 * per tenant (observed from the pool's own counts at scrape time, so the hot path records
 * nothing), and kills and busy rejections per tenant as counters. Call latency, timeouts and
 * memory kills per component are recorded around every runtime by instrumentComponentRuntime (src/telemetry).
 */
import type { Counter } from '@opentelemetry/api';
import type { MetricService } from 'nestjs-otel';
import type { KillKind, TenantPoolEvents, TenantPoolStats } from './tenant-pool.js';

export class PoolMetrics implements TenantPoolEvents {
  private readonly kills: Counter;
  private readonly busyRejections: Counter;

  constructor(metrics: MetricService, snapshot: () => Record<string, TenantPoolStats>) {
    this.kills = metrics.getCounter('greentic_component_pool_kills', {
      description: 'Component workers stopped, by tenant and reason (timeout, memory, crash)',
    });
    this.busyRejections = metrics.getCounter('greentic_component_pool_busy', {
      description: 'Component calls refused with component_busy (pool and queue full), by tenant',
    });
    const gauges: Array<[string, string, (s: TenantPoolStats) => number]> = [
      ['greentic_component_pool_workers', 'Component worker threads, by tenant', (s) => s.workers],
      [
        'greentic_component_pool_inflight',
        'Component calls sent to workers and not answered, by tenant',
        (s) => s.inflight,
      ],
      [
        'greentic_component_pool_queued',
        'Component calls waiting for a worker slot, by tenant',
        (s) => s.queued,
      ],
    ];
    for (const [name, description, pick] of gauges) {
      metrics.getObservableGauge(name, { description }).addCallback((r) => {
        for (const [tenant, s] of Object.entries(snapshot())) r.observe(pick(s), { tenant });
      });
    }
  }

  killed(tenantId: string, kind: KillKind): void {
    this.kills.add(1, { tenant: tenantId, reason: kind });
  }

  busy(tenantId: string): void {
    this.busyRejections.add(1, { tenant: tenantId });
  }
}
