// The tracing floor: bench/webhook/bare-server.mjs's answer, plus, per request, the spans the
// runner records by default for one message of the benchmark flow, one per hop (webhook, publish
// ingress, consume ingress, flow run with its two nodes as events, component call, publish egress,
// which also answers the waiting caller: same names, kinds, attributes, parent chain, traceparent
// hops, the envelope's own traceparent field, and active contexts), through the
// runner's own OpenTelemetry setup (dist/telemetry/otel.js: tracer provider, batch processor, OTLP
// exporter, redaction, the AsyncLocalStorage context manager). No Nest and no runner logic: what it
// costs over the bare server is what the SDK itself costs per traced message, the least any runner
// emitting this trace could pay. Prints LISTENING <url>. `tracedAnswer` is the per-request part,
// for floor-in-runner-server.mjs.
import { fileURLToPath } from 'node:url';
import { context, propagation, ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { shutdownTelemetry, startTelemetry } from '../../dist/telemetry/otel.js';
import { serveBare } from '../webhook/bare-server.mjs';

// From the global provider, whoever registered it (this script, or the runner beside it), at the
// first request: taken before a provider is registered it would be the API's proxy.
let tracer;
const [tenant, env, team, channel] = ['bench', 'dev', 'default', 'web'];
const tenancy = {
  'greentic.tenant': tenant,
  'greentic.env': env,
  'greentic.team': team,
  'greentic.channel': channel,
};
const inSubject = `greentic.messaging.ingress.${env}.${tenant}.${team}.${channel}`;
const outSubject = `greentic.messaging.egress.${env}.${tenant}.${team}.${channel}`;
// The waiting caller's reply subject, a header of the runner's publishes.
const replyTo = 'greentic.reply.bench';

// The bus's de-duplication id, which the runner's publish spans carry: session key and message id.
const sessionKey = (body) => `${tenant}:webhook:${body.userId}:${body.userId}`;

/** A publish as the runner's instrumented bus makes it: a PRODUCER span, its traceparent in the headers. */
function publishOnly(parent, direction, subject, msgId) {
  const pub = tracer.startSpan(
    `publish ${direction}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'memory',
        'messaging.destination.name': subject,
        'messaging.message.id': msgId,
        ...tenancy,
      },
    },
    parent,
  );
  const headers = { 'greentic-tenant': tenant, 'greentic-env': env };
  // The ingress publish names the waiting caller's reply subject (the egress publish takes it as an option).
  if (direction === 'ingress') headers['greentic-reply-to'] = replyTo;
  propagation.inject(trace.setSpan(parent, pub), headers);
  pub.end();
  return headers;
}

/** A bus hop: the publish, then the group's delivery, a CONSUMER span parented by the header. */
function hop(parent, direction, subject, msgId, id, consumer) {
  const headers = publishOnly(parent, direction, subject, msgId);
  return tracer.startSpan(
    `${consumer} ${direction}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'memory',
        'messaging.destination.name': subject,
        'messaging.consumer.group.name': 'greentic-runner',
        'messaging.message.delivery_count': 1,
        ...tenancy,
        'messaging.message.id': id,
      },
    },
    propagation.extract(ROOT_CONTEXT, headers),
  );
}

function traceOne(body, req) {
  tracer ??= trace.getTracer('greentic-runner');
  const webhook = tracer.startSpan(
    'webhook webhook',
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': req.method,
        'http.route': '/webhooks/{provider}/{tenant}/{env}/{team}/{channel}',
        'greentic.provider': 'webhook',
        ...tenancy,
      },
    },
    propagation.extract(context.active(), req.headers),
  );
  // Each span active while its hop runs, as the runner's are (the context manager's work included).
  context.with(trace.setSpan(context.active(), webhook), () => {
    // The envelope carries the webhook span's context as its own `traceparent` field (the runner's
    // IngressService injects it once per message, besides each publish's header).
    const carrier = {};
    propagation.inject(context.active(), carrier);
    const id = body.messageId;
    const key = sessionKey(body);
    const consume = hop(context.active(), 'ingress', inSubject, JSON.stringify([key, id]), id, 'consume');
    context.with(trace.setSpan(context.active(), consume), () => {
      const t0 = Date.now();
      const flow = tracer.startSpan('flow bench', {
        attributes: {
          'greentic.tenant': tenant,
          'greentic.env': env,
          'greentic.channel': channel,
          'greentic.provider': 'webhook',
          'greentic.pack': 'bench',
          'greentic.flow': 'bench',
          'greentic.team': team,
        },
      });
      context.with(trace.setSpan(context.active(), flow), () =>
        context.with(
          trace.setSpan(
            context.active(),
            tracer.startSpan('component echo', {
              attributes: {
                'greentic.tenant': tenant,
                'greentic.env': env,
                'greentic.team': team,
                'greentic.flow': 'bench',
                'greentic.node': 'forecast',
                'greentic.component': 'echo',
                'greentic.component.version': '0.1.0',
                'greentic.operation': 'execute',
              },
            }),
          ),
          () => trace.getActiveSpan().end(),
        ),
      );
      flow.setAttribute('greentic.outcome', 'completed');
      const node = (nodeId, operation, component) => ({
        'greentic.node': nodeId,
        'greentic.operation': operation,
        'greentic.duration_ms': 0.1,
        'greentic.outcome': 'ok',
        ...(component ? { 'greentic.component': component } : {}),
      });
      flow.addEvent('node forecast', node('forecast', 'mcp.exec', 'echo'), t0);
      flow.addEvent('node answer', node('answer', 'reply'), t0);
      flow.end();
      // The flow's reply: one egress publish, which also reaches the waiting caller (no group
      // consumes a webhook channel without callback_url).
      publishOnly(context.active(), 'egress', outSubject, JSON.stringify([key, `${id}:reply`]));
    });
    webhook.setAttribute('greentic.messages', 1);
    consume.end();
  });
  return webhook;
}

/** serveBare's `around`: the request's spans, the webhook span ended after the answer. */
export function tracedAnswer(body, req) {
  const webhook = traceOne(body, req);
  return () => {
    webhook.setAttribute('http.response.status_code', 200);
    webhook.end();
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await startTelemetry();
  const server = serveBare(tracedAnswer);
  process.on('SIGTERM', () => server.close(() => shutdownTelemetry().then(() => process.exit(0))));
}
