import { context, SpanStatusCode, trace, type Attributes, type Span, type Tracer } from '@opentelemetry/api';
import { nodeTelemetry } from '../flows/flow-executor.service.js';
import type { FlowRunInput, FlowRunner, FlowRunResult, NodeTrace } from '../flows/flow-run.types.js';
import { runnerMetrics, type RunnerMetrics } from './runner-metrics.js';
import { failSpan, TRACER_NAME, tracingEnabled } from './trace-fields.js';

export interface FlowRunnerInstrumentationOptions {
  /** Record spans (default: whether a tracer provider is registered). */
  tracing?: boolean;
  /** One child span per node instead of span events (GREENTIC_TRACE_NODES). */
  nodeSpans?: boolean;
  metrics?: RunnerMetrics;
}

/**
 * The flow run with a `flow <id>` span, active while the flow runs (component calls are its
 * children). The executor's node trace becomes the span's events, one per node with its timing
 * and outcome, or, with `nodeSpans`, child spans carrying the same facts and the node's own
 * `telemetry.attributes`. Metrics: node latency by flow, node, operation and outcome.
 */
export function instrumentFlowRunner(
  runner: FlowRunner,
  opts: FlowRunnerInstrumentationOptions = {},
): FlowRunner {
  const m = opts.metrics ?? runnerMetrics();
  const tracing = opts.tracing ?? tracingEnabled();
  const nodeSpans = opts.nodeSpans ?? false;
  const tracer = trace.getTracer(TRACER_NAME);

  const recordNodes = (input: FlowRunInput, result: FlowRunResult): void => {
    for (const n of result.trace) {
      m.nodeDuration.record(
        n.durationMs,
        m.labels.bound({
          tenant: input.tenant.tenantId,
          flow: n.flowId ?? input.flowId,
          node: n.nodeId,
          operation: n.operation,
          outcome: n.ok ? 'ok' : 'error',
        }),
      );
    }
  };

  const traced = async (input: FlowRunInput): Promise<FlowRunResult> => {
    const { tenant, message } = input;
    const parent = context.active();
    const attributes: Attributes = {
      'greentic.tenant': tenant.tenantId,
      'greentic.env': tenant.envId,
      'greentic.channel': message.channel,
      'greentic.provider': message.provider,
      'greentic.pack': input.pack.id,
      'greentic.flow': input.flowId,
    };
    if (tenant.teamId !== undefined) attributes['greentic.team'] = tenant.teamId;
    const span = tracer.startSpan(`flow ${input.flowId}`, { attributes }, parent);
    try {
      const result = await context.with(trace.setSpan(parent, span), () => runner.run(input));
      span.setAttribute('greentic.outcome', result.status);
      if (result.error) {
        span.setAttribute('greentic.error.code', result.error.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: result.error.code });
      }
      if (nodeSpans) recordNodeSpans(tracer, span, input, result.trace);
      else for (const n of result.trace) span.addEvent(`node ${n.nodeId}`, nodeAttributes(n), n.startedAt);
      recordNodes(input, result);
      return result;
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  };

  if (!tracing)
    return {
      run: (input) =>
        runner.run(input).then((result) => {
          recordNodes(input, result);
          return result;
        }),
    };
  return { run: traced };
}

function nodeAttributes(n: NodeTrace): Attributes {
  const a: Attributes = {
    'greentic.node': n.nodeId,
    'greentic.operation': n.operation,
    'greentic.duration_ms': n.durationMs,
    'greentic.outcome': n.ok ? 'ok' : 'error',
  };
  if (n.flowId !== undefined) a['greentic.flow'] = n.flowId;
  if (n.depth !== undefined) a['greentic.flow.depth'] = n.depth;
  if (n.component !== undefined) a['greentic.component'] = n.component;
  if (n.attempts !== undefined) a['greentic.attempts'] = n.attempts;
  if (n.retries !== undefined) a['greentic.retries'] = n.retries;
  if (n.skipped) a['greentic.skipped'] = true;
  if (n.error !== undefined) a['greentic.error.code'] = n.error;
  return a;
}

/**
 * Node spans made after the run from its node trace, with the recorded start and end times:
 * the executor carries no tracing code, and a flow of built-in nodes pays nothing per node.
 */
function recordNodeSpans(tracer: Tracer, flowSpan: Span, input: FlowRunInput, nodes: NodeTrace[]): void {
  const parent = trace.setSpan(context.active(), flowSpan);
  for (const n of nodes) {
    const attributes = nodeAttributes(n);
    const flow = input.pack.flows.get(n.flowId ?? input.flowId);
    const extra = flow ? nodeTelemetry(flow, n.nodeId) : null;
    if (extra) Object.assign(attributes, extra);
    const span = tracer.startSpan(`node ${n.nodeId}`, { attributes, startTime: n.startedAt }, parent);
    if (!n.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: n.error ?? 'error' });
    span.end(n.startedAt + n.durationMs);
  }
}
