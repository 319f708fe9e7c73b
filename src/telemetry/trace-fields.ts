import { context, trace, type Context } from '@opentelemetry/api';

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
