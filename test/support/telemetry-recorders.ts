import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { LabelGuard } from '../../src/common/label-guard.js';
import type { RunnerMetrics } from '../../src/telemetry/runner-metrics.js';

/** A tracer provider recording into memory, registered globally (with the AsyncLocalStorage manager). */
export function recordSpans(): { exporter: InMemorySpanExporter; stop: () => Promise<void> } {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  return {
    exporter,
    stop: async () => {
      await provider.shutdown();
      trace.disable();
      context.disable();
    },
  };
}

export interface Recorded {
  name: string;
  value: number;
  attrs: Record<string, unknown>;
}

/** RunnerMetrics whose instruments record into a list. */
export function recordMetrics(): { calls: Recorded[]; metrics: RunnerMetrics } {
  const calls: Recorded[] = [];
  const inst = (name: string) => ({
    add: (value: number, attrs: Record<string, unknown> = {}) => calls.push({ name, value, attrs }),
    record: (value: number, attrs: Record<string, unknown> = {}) => calls.push({ name, value, attrs }),
  });
  const gauges = new Map<
    string,
    (r: { observe: (v: number, a?: Record<string, unknown>) => void }) => void
  >();
  const metrics = {
    labels: new LabelGuard(),
    messagesIn: inst('in'),
    messagesOut: inst('out'),
    nodeDuration: inst('node'),
    componentDuration: inst('component'),
    componentTimeouts: inst('timeouts'),
    componentMemoryKills: inst('memoryKills'),
    sessionStoreDuration: inst('session'),
    busLag: inst('lag'),
    packReloads: inst('reloads'),
    gauge: (name: string) => ({ addCallback: (cb: never) => gauges.set(name, cb) }),
    metrics: { getObservableCounter: () => ({ addCallback: () => undefined }) },
  } as unknown as RunnerMetrics;
  return { calls, metrics };
}
