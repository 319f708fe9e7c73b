import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Attributes,
  type Context,
} from '@opentelemetry/api';
import type {
  BusHandler,
  BusMessage,
  MessageBus,
  PublishOptions,
  SubscribeOptions,
} from '../core/message-bus.js';
import type { MessageEnvelope } from '../core/message-envelope.js';
import { isReplySubject, parseSubject, type SubjectParts } from '../core/subjects.js';
import { runnerMetrics, type RunnerMetrics } from './runner-metrics.js';
import { failSpan, TRACER_NAME, tracingEnabled } from './trace-fields.js';
import { promiseOf } from '../common/promise-of.js';

/** Header carrying the publish time, for the bus-lag histogram. */
export const PUBLISHED_AT_HEADER = 'greentic-published-at';
const MAX_TRACED_TEXT = 256;

export interface BusInstrumentationOptions {
  /** Record spans (default: whether a tracer provider is registered). */
  tracing?: boolean;
  /** Put the message text on the ingress consume span (GREENTIC_TRACE_MESSAGE_TEXT). */
  traceMessageText?: boolean;
  metrics?: RunnerMetrics;
}

/**
 * The bus seam with spans and metrics: a `publish <direction>` span (PRODUCER) whose context goes
 * on the message as W3C `traceparent`, and, for each delivery to a consumer group, a span
 * (CONSUMER: `consume ingress`, `send egress` for the delivery of replies to their channel)
 * parented on that header, active while the handler runs, so what the handler does (the flow
 * run, the reply publish) joins the message's trace. Fan-out listeners (reply waiters, the
 * dead-letter store) get no span: the group's delivery is the hop. Metrics: bus lag per
 * direction, and replies delivered or failed per channel.
 */
export function instrumentBus(bus: MessageBus, opts: BusInstrumentationOptions = {}): MessageBus {
  const m = opts.metrics ?? runnerMetrics();
  const tracing = opts.tracing ?? tracingEnabled();
  const traceText = opts.traceMessageText ?? false;
  const tracer = trace.getTracer(TRACER_NAME);
  const system = bus.kind;
  // The in-process bus stamps its deliveries itself (`publishedAt`); others carry the publish
  // time across processes in a header.
  const stampsItself = bus.kind === 'memory';

  const publish = (subject: string, data: unknown, po: PublishOptions = {}) => {
    if (!tracing) {
      if (stampsItself) return bus.publish(subject, data, po);
      const headers = { ...(po.headers ?? {}), [PUBLISHED_AT_HEADER]: String(Date.now()) };
      return bus.publish(subject, data, { ...po, headers });
    }
    const parts = parseSubject(subject);
    const parent = context.active();
    const span = tracer.startSpan(
      // A replica's reply subject names the replica: the span name stays the same for all.
      `publish ${parts?.direction ?? (isReplySubject(subject) ? 'reply' : subject)}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': system,
          'messaging.destination.name': subject,
          ...(po.msgId !== undefined ? { 'messaging.message.id': po.msgId } : {}),
          ...tenancyAttrs(parts),
        },
      },
      parent,
    );
    const headers: Record<string, string> = { ...(po.headers ?? {}) };
    if (!stampsItself) headers[PUBLISHED_AT_HEADER] = String(Date.now());
    propagation.inject(trace.setSpan(parent, span), headers);
    return bus.publish(subject, data, { ...po, headers }).then(
      (ack) => {
        if (ack.duplicate) span.setAttribute('greentic.duplicate', true);
        span.end();
        return ack;
      },
      (e: unknown) => {
        failSpan(span, e);
        span.end();
        throw e;
      },
    );
  };

  const subscribe = <T>(pattern: string, handler: BusHandler<T>, so?: SubscribeOptions) =>
    bus.subscribe<T>(
      pattern,
      // Not async: untraced, a delivery hands back the handler's own promise (one then() when it
      // counts replies out), so the decorator adds no promises of its own to the message.
      (msg) => {
        const parts = parseSubject(msg.subject);
        const group = so?.queue !== undefined;
        // Lag is a property of a delivery to a consumer group; fan-out listeners would count the
        // same delivery again.
        if (group) {
          const publishedAt = msg.publishedAt ?? Number(msg.headers[PUBLISHED_AT_HEADER]);
          if (Number.isFinite(publishedAt) && publishedAt > 0)
            m.busLag.record(Math.max(0, Date.now() - publishedAt), lagLabels(m, parts));
        }
        const countOut = group && parts?.direction === 'egress';
        if (!tracing || !group) return delivered(m, parts, countOut, () => handler(msg));
        // The handler runs in the publisher's context (its baggage too), with this span on it.
        const parent = extractParent(msg);
        const span = tracer.startSpan(
          `${parts?.direction === 'egress' ? 'send' : 'consume'} ${parts?.direction ?? msg.subject}`,
          { kind: SpanKind.CONSUMER, attributes: consumeAttrs(system, msg, so!.queue!, parts, traceText) },
          parent,
        );
        return context
          .with(trace.setSpan(parent, span), () => delivered(m, parts, countOut, () => handler(msg)))
          .then(
            () => span.end(),
            (e: unknown) => {
              failSpan(span, e);
              span.end();
              throw e;
            },
          );
      },
      so,
    );

  return {
    kind: bus.kind,
    publish,
    subscribe,
    health: () => bus.health(),
    close: () => bus.close(),
  };
}

/** Runs a delivery's handler; a reply delivery to its channel counts as delivered or failed. */
function delivered(
  m: RunnerMetrics,
  parts: SubjectParts | null,
  countOut: boolean,
  run: () => Promise<void>,
): Promise<void> {
  const running = promiseOf(run);
  if (!countOut) return running;
  return running.then(
    () => {
      m.messagesOut.add(1, outLabels(m, parts!, 'delivered'));
    },
    (e: unknown) => {
      m.messagesOut.add(1, outLabels(m, parts!, 'failed'));
      throw e;
    },
  );
}

/** The publisher's context from the `traceparent` header, else from the envelope's own field. */
function extractParent(msg: BusMessage<unknown>): Context {
  if (msg.headers['traceparent']) return propagation.extract(ROOT_CONTEXT, msg.headers);
  const data = msg.data as Partial<MessageEnvelope> | undefined;
  return typeof data?.traceparent === 'string'
    ? propagation.extract(ROOT_CONTEXT, { traceparent: data.traceparent })
    : ROOT_CONTEXT;
}

function consumeAttrs(
  system: string,
  msg: BusMessage<unknown>,
  queue: string,
  parts: SubjectParts | null,
  traceText: boolean,
): Attributes {
  const data = msg.data as Partial<MessageEnvelope> | undefined;
  const attrs: Attributes = {
    'messaging.system': system,
    'messaging.destination.name': msg.subject,
    'messaging.consumer.group.name': queue,
    'messaging.message.delivery_count': msg.deliveryCount,
    ...tenancyAttrs(parts),
  };
  if (typeof data?.id === 'string') attrs['messaging.message.id'] = data.id;
  if (traceText && parts?.direction === 'ingress' && typeof data?.text === 'string')
    attrs['greentic.message.text'] = data.text.slice(0, MAX_TRACED_TEXT);
  return attrs;
}

/** Parsed subjects are one object per call, so label sets are bound by their values. */
function lagLabels(m: RunnerMetrics, parts: SubjectParts | null): Attributes {
  return m.labels.bound({ direction: parts?.direction ?? 'other' });
}

function outLabels(m: RunnerMetrics, parts: SubjectParts, outcome: 'delivered' | 'failed'): Attributes {
  return m.labels.bound({ tenant: parts.tenant, channel: parts.channel, outcome });
}

function tenancyAttrs(parts: SubjectParts | null): Record<string, string> {
  if (!parts) return {};
  return {
    'greentic.tenant': parts.tenant,
    'greentic.env': parts.env,
    'greentic.team': parts.team,
    'greentic.channel': parts.channel,
  };
}
