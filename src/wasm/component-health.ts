/**
 * `/health` details of the component runtime: per tenant, the pool's workers, calls in flight and
 * queued, and how many calls were stopped (deadline), discarded (memory cap), refused (busy) or
 * crashed. Down only when the runtime cannot report (closed, or a runtime without stats).
 */
import type { ComponentRuntime } from '../core/component-runtime.js';
import type { TenantPoolStats } from './pool/tenant-pool.js';

export interface ComponentsHealth {
  up: boolean;
  details: Record<string, unknown>;
}

export function componentsHealth(runtime: ComponentRuntime): ComponentsHealth {
  let stats: Record<string, unknown>;
  try {
    stats = runtime.stats?.() ?? {};
  } catch (e) {
    return { up: false, details: { kind: runtime.kind, error: (e as Error).message } };
  }
  const tenants = (stats['tenants'] ?? {}) as Record<string, TenantPoolStats>;
  const perTenant: Record<string, unknown> = {};
  for (const [id, t] of Object.entries(tenants)) {
    if (id.startsWith('#')) continue;
    perTenant[id] = {
      workers: t.workers,
      inflight: t.inflight,
      queued: t.queued,
      calls: t.calls,
      timeouts: t.timeouts,
      memoryKills: t.memoryKills,
      traps: t.traps,
      crashes: t.crashes,
      busyRejections: t.busyRejections,
      limits: {
        minWorkers: t.settings.minWorkers,
        maxWorkers: t.settings.maxWorkers,
        pipeline: t.settings.pipeline,
        queueSize: t.settings.queueSize,
        deadlineMs: t.settings.deadlineMs,
        memoryMb: t.settings.memoryMb,
      },
    };
  }
  return {
    up: true,
    details: {
      runtime: runtime.kind,
      ...(stats['channel'] !== undefined ? { channel: stats['channel'] } : {}),
      preparedComponents: stats['preparedComponents'] ?? 0,
      transpiles: stats['transpiles'] ?? 0,
      ...(stats['tenants'] !== undefined
        ? { tenants: perTenant }
        : { instancesPerTenant: stats['instancesPerTenant'] ?? {} }),
    },
  };
}
