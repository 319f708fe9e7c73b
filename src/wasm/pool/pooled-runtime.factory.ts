/**
 * Builds the pool runtime from the runner's services: process defaults from RunnerConfig, each
 * tenant's limits and HTTP allow-list from the bundle (read when its pool is built, so a reloaded
 * bundle applies on release()), secrets through SecretsService, metrics through nestjs-otel.
 */
import type { MetricService } from 'nestjs-otel';
import type { RunnerConfig } from '../../config/runner-config.js';
import type { SecretsService } from '../../secrets/secrets.service.js';
import type { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import type { HttpPolicy } from '../host/http-fetch.js';
import { DEFAULT_HTTP_POLICY } from '../host/http-fetch.js';
import { PoolMetrics } from './pool-metrics.js';
import type { PoolSettings } from './pool-settings.js';
import { PooledComponentRuntime } from './pooled-component.runtime.js';

export interface PooledRuntimeDeps {
  config?: RunnerConfig;
  secrets?: SecretsService;
  bundles?: BundleRegistry;
  metrics?: MetricService;
  /** Digests of the components a tenant's current packs hold (from PackRegistry, at start-up). */
  tenantComponents?(tenantId: string): string[];
}

/**
 * Process defaults from the environment (RunnerConfig). The call channel and polling are not
 * configuration: they keep DEFAULT_POOL_SETTINGS, and only benchmarks pass others (docs/performance.md).
 */
export function poolSettingsFromConfig(config: RunnerConfig | undefined): Partial<PoolSettings> {
  if (!config) return {};
  return {
    minWorkers: config.GREENTIC_COMPONENT_POOL_MIN,
    maxWorkers: config.GREENTIC_COMPONENT_POOL_MAX,
    pipeline: config.GREENTIC_COMPONENT_PIPELINE,
    queueSize: config.GREENTIC_COMPONENT_QUEUE_SIZE,
    deadlineMs: config.GREENTIC_COMPONENT_DEADLINE_MS,
    memoryMb: config.GREENTIC_COMPONENT_MEMORY_MB,
    idleMs: config.GREENTIC_COMPONENT_IDLE_MS,
  };
}

export function createPooledRuntime(deps: PooledRuntimeDeps): PooledComponentRuntime {
  const { config, secrets, bundles, metrics } = deps;
  const tenant = (id: string) => bundles?.bundle.tenants.get(id);
  // Gauges are read at scrape time, after `runtime` below exists.
  const events = metrics
    ? new PoolMetrics(metrics, () =>
        Object.fromEntries(Object.entries(runtime.tenantStats()).filter(([id]) => !id.startsWith('#'))),
      )
    : undefined;
  const runtime: PooledComponentRuntime = new PooledComponentRuntime({
    ...(config
      ? {
          cacheDir: config.GREENTIC_CACHE_DIR,
          cacheMaxAgeMs: config.GREENTIC_CACHE_MAX_AGE_DAYS * 86_400_000,
        }
      : {}),
    settings: poolSettingsFromConfig(config),
    tenantLimits: (id) => tenant(id)?.limits,
    host: {
      ...(secrets ? { secrets } : {}),
      httpPolicy: (t): HttpPolicy | undefined => {
        const http = tenant(t.tenantId)?.http;
        if (!http || http.allow.length === 0) return undefined;
        return {
          ...DEFAULT_HTTP_POLICY,
          allow: http.allow,
          timeoutMs: http.timeoutMs,
          maxResponseBytes: http.maxResponseBytes,
        };
      },
    },
    ...(events ? { events } : {}),
    ...(bundles && deps.tenantComponents
      ? {
          warmup: () =>
            [...bundles.bundle.tenants.keys()].map((tenantId) => ({
              tenantId,
              digests: deps.tenantComponents!(tenantId),
            })),
        }
      : {}),
  });
  return runtime;
}
