// The tracing floor: bench/webhook/bare-server.mjs's answer, plus, per request, the spans the
// runner records by default for one message of the benchmark flow, one per hop (webhook, publish
// ingress, consume ingress, flow run with its two nodes as events, component call, publish egress,
// send egress: same names, kinds, attributes, parent chain and traceparent hops), through the
// runner's own OpenTelemetry setup (dist/telemetry/otel.js: Node SDK, batch processor, OTLP
// exporter, redaction, the AsyncLocalStorage context manager). No Nest and no runner logic: what it
// costs over the bare server is what the SDK itself costs per traced message, the least any runner
// emitting this trace could pay. Prints LISTENING <url>.
import { context, propagation, SpanKind, trace } from '@opentelemetry/api';
import { shutdownTelemetry, startTelemetry } from '../../dist/telemetry/otel.js';
import { serveBare } from '../webhook/bare-server.mjs';

await startTelemetry();
const tracer = trace.getTracer('greentic-runner');
const [tenant, env, team, channel] = ['bench', 'dev', 'default', 'web'];
const tenancy = {
  'greentic.tenant': tenant,
  'greentic.env': env,
  'greentic.team': team,
  'greentic.channel': channel,
};
const inSubject = `greentic.messaging.ingress.${env}.${tenant}.${team}.${channel}`;
const outSubject = `greentic.messaging.egress.${env}.${tenant}.${team}.${channel}`;

/** A bus hop as the runner's instrumentation makes it: publish span, header, consume span. */
function hop(parent, direction, subject, msgId, consumer) {
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
  const headers = {};
  propagation.inject(trace.setSpan(parent, pub), headers);
  pub.end();
  const consume = tracer.startSpan(
    `${consumer} ${direction}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'memory',
        'messaging.destination.name': subject,
        'messaging.consumer.group.name': 'greentic-runner',
        'messaging.message.delivery_count': 1,
        'messaging.message.id': msgId,
        ...tenancy,
      },
    },
    propagation.extract(context.active(), headers),
  );
  return consume;
}

function traceOne(body, req) {
  const webhook = tracer.startSpan('webhook webhook', {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': req.method,
      'http.route': '/webhooks/{provider}/{tenant}/{env}/{team}/{channel}',
      'greentic.provider': 'webhook',
      ...tenancy,
    },
  });
  const id = body.messageId;
  const consume = hop(trace.setSpan(context.active(), webhook), 'ingress', inSubject, id, 'consume');
  const inConsume = trace.setSpan(context.active(), consume);
  const t0 = Date.now();
  const flow = tracer.startSpan(
    'flow bench',
    {
      attributes: {
        'greentic.tenant': tenant,
        'greentic.env': env,
        'greentic.channel': channel,
        'greentic.provider': 'webhook',
        'greentic.pack': 'bench',
        'greentic.flow': 'bench',
        'greentic.team': team,
      },
    },
    inConsume,
  );
  tracer
    .startSpan(
      'component echo',
      {
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
      },
      trace.setSpan(inConsume, flow),
    )
    .end();
  flow.setAttribute('greentic.outcome', 'completed');
  const node = (nodeId, operation, at, component) => ({
    'greentic.node': nodeId,
    'greentic.operation': operation,
    'greentic.duration_ms': 0.1,
    'greentic.outcome': 'ok',
    ...(component ? { 'greentic.component': component } : {}),
  });
  flow.addEvent('node forecast', node('forecast', 'mcp.exec', t0, 'echo'), t0);
  flow.addEvent('node answer', node('answer', 'reply', t0), t0);
  flow.end();
  const send = hop(inConsume, 'egress', outSubject, `${id}:reply`, 'send');
  send.end();
  consume.end();
  return webhook;
}

const server = serveBare((body, req) => {
  const webhook = traceOne(body, req);
  return () => {
    webhook.setAttribute('http.response.status_code', 200);
    webhook.end();
  };
});
process.on('SIGTERM', () => server.close(() => shutdownTelemetry().then(() => process.exit(0))));
