import {
  context,
  ProxyTracerProvider,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';

/** `traceId` and `spanId` of the active trace context, for a log line. Empty outside a recorded trace. */
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
 * Whether spans would be recorded: a tracer provider is registered (the SDK, or a test's). The
 * instrumented seams ask once, when they are built: without a provider they skip span work
 * entirely (a no-op span still costs a context copy per call) and only record metrics.
 */
export function tracingEnabled(): boolean {
  const provider = trace.getTracerProvider();
  return !(
    provider instanceof ProxyTracerProvider && provider.getDelegateTracer('greentic-runner') === undefined
  );
}

export const TRACER_NAME = 'greentic-runner';
