import { context, trace, type Span } from '@opentelemetry/api';
import { ComponentMemoryExceededError, ComponentTimeoutError } from '../common/errors.js';
import type { ComponentCall, ComponentRuntime } from '../core/component-runtime.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { runnerMetrics, type RunnerMetrics } from './runner-metrics.js';
import { failSpan, TRACER_NAME, tracingEnabled } from './trace-fields.js';
import { promiseOf } from '../common/promise-of.js';

export interface RuntimeInstrumentationOptions {
  /** Record spans (default: whether a tracer provider is registered). */
  tracing?: boolean;
  metrics?: RunnerMetrics;
}

/**
 * The component runtime seam with a `component <name>` span per call (active while the call runs,
 * so the component's log lines become its events), the call latency by outcome, timeouts and
 * memory kills, and gauges read from the runtime's stats (instances per tenant, pool size, queue).
 */
export function instrumentComponentRuntime(
  runtime: ComponentRuntime,
  opts: RuntimeInstrumentationOptions = {},
): ComponentRuntime {
  const m = opts.metrics ?? runnerMetrics();
  const tracing = opts.tracing ?? tracingEnabled();
  const tracer = trace.getTracer(TRACER_NAME);

  // Not async: one then() on the runtime's promise (an async wrapper makes more promises per
  // call, each a hook call when tracing is on).
  const measured = (tenant: TenantCtx, call: ComponentCall, span?: Span): Promise<unknown> => {
    const t0 = performance.now();
    const name = call.component.name;
    const done = (outcome: string): void => {
      m.componentDuration.record(
        performance.now() - t0,
        m.labels.bound({ tenant: tenant.tenantId, component: name, outcome }),
      );
      span?.end();
    };
    const failed = (e: unknown): never => {
      let outcome = 'error';
      if (e instanceof ComponentTimeoutError) {
        outcome = 'timeout';
        m.componentTimeouts.add(1, m.labels.bound({ tenant: tenant.tenantId, component: name }));
      } else if (e instanceof ComponentMemoryExceededError) {
        outcome = 'memory';
        m.componentMemoryKills.add(1, m.labels.bound({ tenant: tenant.tenantId, component: name }));
      }
      if (span) failSpan(span, e);
      done(outcome);
      throw e;
    };
    return promiseOf(() => runtime.invoke(tenant, call)).then((r) => {
      done('ok');
      return r;
    }, failed);
  };

  const invoke = (tenant: TenantCtx, call: ComponentCall): Promise<unknown> => {
    if (!tracing) return measured(tenant, call);
    const parent = context.active();
    const span = tracer.startSpan(
      `component ${call.component.name}`,
      {
        attributes: {
          'greentic.tenant': tenant.tenantId,
          'greentic.env': tenant.envId,
          ...(tenant.teamId !== undefined ? { 'greentic.team': tenant.teamId } : {}),
          'greentic.flow': call.ctx.flowId,
          'greentic.node': call.ctx.nodeId,
          'greentic.component': call.component.name,
          'greentic.component.version': call.component.version,
          ...(call.operation ? { 'greentic.operation': call.operation } : {}),
        },
      },
      parent,
    );
    return context.with(trace.setSpan(parent, span), () => measured(tenant, call, span));
  };

  if (runtime.stats) observeStats(runtime, m);
  const instrumented: ComponentRuntime = {
    kind: runtime.kind,
    prepare: (spec) => runtime.prepare(spec),
    invoke,
    close: () => runtime.close(),
  };
  if (runtime.release) instrumented.release = (tenant) => runtime.release!(tenant);
  if (runtime.stats) instrumented.stats = () => runtime.stats!();
  return instrumented;
}

function observeStats(runtime: ComponentRuntime, m: RunnerMetrics): void {
  const stats = (): Record<string, unknown> => runtime.stats?.() ?? {};
  m.gauge('greentic_component_instances', 'Live component instances, by tenant').addCallback((r) => {
    const per = stats()['instancesPerTenant'];
    if (!per || typeof per !== 'object') return;
    for (const [key, n] of Object.entries(per as Record<string, unknown>))
      if (typeof n === 'number') r.observe(n, m.labels.bound({ tenant: key.split('/')[0] ?? key }));
  });
  m.gauge('greentic_component_pool_size', 'Component worker threads running (all tenants)').addCallback(
    (r) => {
      const n = stats()['poolSize'];
      if (typeof n === 'number') r.observe(n);
    },
  );
  m.gauge('greentic_component_queue_depth', 'Component calls waiting for a free instance').addCallback(
    (r) => {
      const s = stats();
      const q = s['queueDepth'] ?? s['queued'] ?? s['pending'];
      r.observe(typeof q === 'number' ? q : 0);
    },
  );
}
