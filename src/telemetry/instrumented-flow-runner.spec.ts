import { context, trace } from '@opentelemetry/api';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { recordMetrics, recordSpans } from '../../test/support/telemetry-recorders.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import type { FlowRunInput, FlowRunResult, FlowRunner, NodeTrace } from '../flows/flow-run.types.js';
import { instrumentFlowRunner } from './instrumented-flow-runner.js';

const t0 = Date.now();
const NODES: NodeTrace[] = [
  { nodeId: 'ask', operation: 'qa.process', startedAt: t0, durationMs: 1, ok: true },
  {
    nodeId: 'call',
    operation: 'component.exec',
    startedAt: t0 + 1,
    durationMs: 5,
    ok: false,
    error: 'component_trap',
    component: 'weather',
    attempts: 2,
    retries: ['component_trap'],
  },
];

const input = {
  tenant: { tenantId: 'acme', envId: 'dev', teamId: 'support' },
  message: { channel: 'web', provider: 'webhook' } as MessageEnvelope,
  pack: { id: 'demo', version: '1', flows: new Map(), components: new Map(), assets: new Map() },
  flowId: 'weather_bot',
} as unknown as FlowRunInput;

class FakeRunner implements FlowRunner {
  activeDuringRun: string | undefined;
  async run(): Promise<FlowRunResult> {
    this.activeDuringRun = trace.getActiveSpan()?.spanContext().spanId;
    await new Promise((r) => setTimeout(r, 1));
    return {
      status: 'failed',
      replies: [],
      snapshot: null,
      sessionData: {},
      error: { code: 'component_trap', message: 'trap', nodeId: 'call' },
      trace: NODES,
    };
  }
}

describe('instrumentFlowRunner', () => {
  let exporter: InMemorySpanExporter;
  let stop: () => Promise<void>;
  beforeAll(() => ({ exporter, stop } = recordSpans()));
  afterAll(() => stop());
  beforeEach(() => exporter.reset());

  it('records the run as one span with its nodes as events, active while the flow runs', async () => {
    const inner = new FakeRunner();
    const { calls, metrics } = recordMetrics();
    const runner = instrumentFlowRunner(inner, { tracing: true, metrics });
    const parent = trace.getTracer('t').startSpan('consume ingress');
    await context.with(trace.setSpan(context.active(), parent), () => runner.run(input));
    parent.end();
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.name).sort()).toEqual(['consume ingress', 'flow weather_bot']);
    const flow = spans.find((s) => s.name === 'flow weather_bot')!;
    expect(flow.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(inner.activeDuringRun).toBe(flow.spanContext().spanId);
    expect(flow.attributes).toMatchObject({
      'greentic.tenant': 'acme',
      'greentic.team': 'support',
      'greentic.flow': 'weather_bot',
      'greentic.outcome': 'failed',
      'greentic.error.code': 'component_trap',
    });
    expect(flow.status.code).toBe(2);
    expect(flow.events.map((e) => e.name)).toEqual(['node ask', 'node call']);
    expect(flow.events[1]!.attributes).toMatchObject({
      'greentic.operation': 'component.exec',
      'greentic.component': 'weather',
      'greentic.attempts': 2,
      'greentic.error.code': 'component_trap',
      'greentic.outcome': 'error',
    });
    expect(calls.map((c) => [c.name, c.attrs['node'], c.attrs['outcome']])).toEqual([
      ['node', 'ask', 'ok'],
      ['node', 'call', 'error'],
    ]);
  });

  it('with node spans, makes one child span per node at the recorded times', async () => {
    const { metrics } = recordMetrics();
    const runner = instrumentFlowRunner(new FakeRunner(), { tracing: true, nodeSpans: true, metrics });
    await runner.run(input);
    const spans = exporter.getFinishedSpans();
    const flow = spans.find((s) => s.name === 'flow weather_bot')!;
    expect(flow.events).toHaveLength(0);
    const nodes = spans.filter((s) => s.name.startsWith('node '));
    expect(nodes.map((s) => s.name)).toEqual(['node ask', 'node call']);
    for (const n of nodes) expect(n.parentSpanContext?.spanId).toBe(flow.spanContext().spanId);
    const call = nodes[1]!;
    expect(call.status.code).toBe(2);
    const startMs = call.startTime[0] * 1000 + call.startTime[1] / 1e6;
    const endMs = call.endTime[0] * 1000 + call.endTime[1] / 1e6;
    expect(Math.abs(startMs - (t0 + 1))).toBeLessThan(1);
    expect(Math.abs(endMs - startMs - 5)).toBeLessThan(1);
  });

  it('without tracing, records node latencies only', async () => {
    const { calls, metrics } = recordMetrics();
    const runner = instrumentFlowRunner(new FakeRunner(), { tracing: false, metrics });
    const r = await runner.run(input);
    expect(r.status).toBe('failed');
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(calls).toHaveLength(2);
  });
});
