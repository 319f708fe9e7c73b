import { context, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { recordMetrics, recordSpans } from '../../test/support/telemetry-recorders.js';
import { ComponentMemoryExceededError, ComponentTimeoutError } from '../common/errors.js';
import type { ComponentCall, ComponentRuntime } from '../core/component-runtime.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { instrumentComponentRuntime } from './instrumented-component-runtime.js';

const ACME: TenantCtx = { tenantId: 'acme', envId: 'dev' };

const call = (name: string): ComponentCall => ({
  component: {
    name,
    version: '1',
    digest: 'd',
    world: 'greentic:component@0.1.0',
    exports: [],
    operations: [],
  },
  operation: 'execute',
  input: {},
  ctx: { flowId: 'f', nodeId: 'n', messageId: 'm', userId: 'u', sessionKey: 's', text: '' },
});

class FakeRuntime implements ComponentRuntime {
  readonly kind = 'fake';
  activeDuringCall: string | undefined;
  released: TenantCtx[] = [];
  async prepare(): Promise<never> {
    throw new Error('not used');
  }
  async invoke(_t: TenantCtx, c: ComponentCall): Promise<unknown> {
    this.activeDuringCall = trace.getActiveSpan()?.spanContext().spanId;
    await new Promise((r) => setTimeout(r, 1));
    if (c.component.name === 'slow') throw new ComponentTimeoutError('slow timed out');
    if (c.component.name === 'hungry') throw new ComponentMemoryExceededError('hungry over its cap');
    return { ok: true };
  }
  async release(t: TenantCtx): Promise<void> {
    this.released.push(t);
  }
  stats(): Record<string, unknown> {
    return { poolSize: 2 };
  }
  async close(): Promise<void> {}
}

describe('instrumentComponentRuntime', () => {
  let exporter: InMemorySpanExporter;
  let stop: () => Promise<void>;
  beforeAll(() => ({ exporter, stop } = recordSpans()));
  afterAll(() => stop());
  beforeEach(() => exporter.reset());

  it('makes each call a span under the caller, active while the component runs', async () => {
    const inner = new FakeRuntime();
    const { calls, metrics } = recordMetrics();
    const runtime = instrumentComponentRuntime(inner, { tracing: true, metrics });
    const parent = trace.getTracer('t').startSpan('flow f');
    await context.with(trace.setSpan(context.active(), parent), () => runtime.invoke(ACME, call('echo')));
    parent.end();
    const span = exporter.getFinishedSpans().find((s) => s.name === 'component echo')!;
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(inner.activeDuringCall).toBe(span.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      'greentic.tenant': 'acme',
      'greentic.flow': 'f',
      'greentic.node': 'n',
      'greentic.component': 'echo',
      'greentic.operation': 'execute',
    });
    expect(calls).toEqual([
      expect.objectContaining({
        name: 'component',
        attrs: { tenant: 'acme', component: 'echo', outcome: 'ok' },
      }),
    ]);
  });

  it('counts timeouts and memory kills, and fails the span', async () => {
    const { calls, metrics } = recordMetrics();
    const runtime = instrumentComponentRuntime(new FakeRuntime(), { tracing: true, metrics });
    await expect(runtime.invoke(ACME, call('slow'))).rejects.toBeInstanceOf(ComponentTimeoutError);
    await expect(runtime.invoke(ACME, call('hungry'))).rejects.toBeInstanceOf(ComponentMemoryExceededError);
    expect(calls.map((c) => [c.name, c.attrs['outcome'] ?? c.attrs['component']])).toEqual([
      ['timeouts', 'slow'],
      ['component', 'timeout'],
      ['memoryKills', 'hungry'],
      ['component', 'memory'],
    ]);
    expect(exporter.getFinishedSpans().map((s) => s.status.code)).toEqual([2, 2]);
  });

  it('passes the rest of the seam through, and without tracing records only metrics', async () => {
    const inner = new FakeRuntime();
    const { calls, metrics } = recordMetrics();
    const runtime = instrumentComponentRuntime(inner, { tracing: false, metrics });
    await runtime.invoke(ACME, call('echo'));
    await runtime.release?.(ACME);
    expect(inner.released).toEqual([ACME]);
    expect(runtime.stats?.()).toEqual({ poolSize: 2 });
    expect(runtime.kind).toBe('fake');
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(calls.map((c) => c.name)).toEqual(['component']);
  });
});
