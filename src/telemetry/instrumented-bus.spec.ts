import { context, SpanKind, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { recordMetrics, recordSpans } from '../../test/support/telemetry-recorders.js';
import type { InMemorySpanExporter } from '@opentelemetry/sdk-trace-node';
import { InProcessBus } from '../messaging/in-process.bus.js';
import { egressSubject, ingressSubject } from '../core/subjects.js';
import type { BusMessage, MessageBus } from '../core/message-bus.js';
import { instrumentBus } from './instrumented-bus.js';

const IN = ingressSubject('dev', 'acme', 'default', 'web');
const OUT = egressSubject('dev', 'acme', 'default', 'web');

describe('instrumentBus', () => {
  let exporter: InMemorySpanExporter;
  let stop: () => Promise<void>;
  beforeAll(() => ({ exporter, stop } = recordSpans()));
  afterAll(() => stop());
  beforeEach(() => exporter.reset());

  function busWith(traceMessageText = false) {
    const inner = new InProcessBus();
    const { calls, metrics } = recordMetrics();
    return { inner, calls, bus: instrumentBus(inner, { tracing: true, metrics, traceMessageText }) };
  }

  it('links publish and consume through traceparent, and runs the handler in the consume span', async () => {
    const { bus } = busWith();
    let active: string | undefined;
    let headers: Record<string, string> = {};
    const done = new Promise<void>((resolve) => {
      void bus.subscribe(
        IN,
        async (msg: BusMessage) => {
          headers = msg.headers;
          active = trace.getActiveSpan()?.spanContext().spanId;
          resolve();
        },
        { queue: 'runner' },
      );
    });
    const root = trace.getTracer('t').startSpan('webhook');
    await context.with(trace.setSpan(context.active(), root), () =>
      bus.publish(IN, { id: 'm1', text: 'secret words' }, { msgId: 'm1' }),
    );
    await done;
    root.end();
    const spans = exporter.getFinishedSpans();
    const publish = spans.find((s) => s.name === 'publish ingress')!;
    const consume = spans.find((s) => s.name === 'consume ingress')!;
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(consume.kind).toBe(SpanKind.CONSUMER);
    expect(publish.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    expect(consume.parentSpanContext?.spanId).toBe(publish.spanContext().spanId);
    expect(headers['traceparent']).toContain(publish.spanContext().spanId);
    expect(active).toBe(consume.spanContext().spanId);
    expect(consume.attributes).toMatchObject({
      'messaging.system': 'memory',
      'messaging.consumer.group.name': 'runner',
      'greentic.tenant': 'acme',
      'greentic.channel': 'web',
      'messaging.message.id': 'm1',
    });
    expect(JSON.stringify(consume.attributes)).not.toContain('secret words');
    await bus.close();
  });

  it('puts the message text on the consume span only when asked', async () => {
    const { bus } = busWith(true);
    const done = new Promise<void>((resolve) => {
      void bus.subscribe(IN, async () => resolve(), { queue: 'runner' });
    });
    await bus.publish(IN, { id: 'm2', text: 'hello there' });
    await done;
    expect(exporter.getFinishedSpans().find((s) => s.name === 'consume ingress')!.attributes).toMatchObject({
      'greentic.message.text': 'hello there',
    });
    await bus.close();
  });

  it('gives fan-out listeners no span, and counts egress deliveries by outcome with their lag', async () => {
    const { bus, calls } = busWith();
    let n = 0;
    const delivered = new Promise<void>((resolve) => {
      void bus.subscribe(
        OUT,
        async () => {
          if (++n === 1) throw new Error('channel down');
          resolve();
        },
        { queue: 'egress' },
      );
    });
    const listened = new Promise<void>((resolve) => {
      void bus.subscribe(OUT, async () => resolve());
    });
    await bus.publish(OUT, { id: 'r1' });
    await listened;
    await delivered;
    await new Promise((r) => setImmediate(r));
    const spans = exporter.getFinishedSpans();
    const sends = spans.filter((s) => s.name === 'send egress');
    expect(sends).toHaveLength(2);
    expect(sends[0]!.status.code).toBe(2);
    expect(spans.filter((s) => s.name.startsWith('consume'))).toHaveLength(0);
    const out = calls.filter((c) => c.name === 'out').map((c) => c.attrs['outcome']);
    expect(out).toEqual(['failed', 'delivered']);
    expect(calls.filter((c) => c.name === 'lag').every((c) => c.attrs['direction'] === 'egress')).toBe(true);
    expect(calls.filter((c) => c.name === 'lag').length).toBeGreaterThanOrEqual(2);
    await bus.close();
  });

  it('without tracing, records no span but still the metrics', async () => {
    const inner: MessageBus = new InProcessBus();
    const { calls, metrics } = recordMetrics();
    const bus = instrumentBus(inner, { tracing: false, metrics });
    const done = new Promise<void>((resolve) => {
      void bus.subscribe(OUT, async () => resolve(), { queue: 'egress' });
    });
    await bus.publish(OUT, { id: 'r3' });
    await done;
    await new Promise((r) => setImmediate(r));
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    expect(calls.map((c) => c.name).sort()).toEqual(['lag', 'out']);
    await bus.close();
  });
});
