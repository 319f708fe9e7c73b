import {
  context,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';

/**
 * `traceId` and `spanId` of a trace context, for a log line: the one given (a message's, handed
 * down explicitly) or the active one. Empty outside a recorded trace.
 */
export function traceFields(ctx: Context = context.active()): { traceId?: string; spanId?: string } {
  const sc = trace.getSpan(ctx)?.spanContext();
  return sc && sc.traceId !== '00000000000000000000000000000000'
    ? { traceId: sc.traceId, spanId: sc.spanId }
    : {};
}

/** Marks a span failed by `e`: the exception as an event, the status ERROR with its message. */
export function failSpan(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : new Error(String(e)));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
}

/**
 * Whether node spans would be recorded: a tracer provider is registered (the SDK, or a test's), and
 * the parent span, if any, is sampled. Creating a span through the no-op API still costs a few
 * microseconds (and a context copy), which a flow of built-in nodes, or a message, notices.
 */
export function tracingOn(traceContext: Context): boolean {
  const provider = trace.getTracerProvider();
  if (provider instanceof ProxyTracerProvider && provider.getDelegateTracer('greentic-runner') === undefined)
    return false;
  const parent = trace.getSpan(traceContext);
  return parent === undefined || parent.isRecording();
}
