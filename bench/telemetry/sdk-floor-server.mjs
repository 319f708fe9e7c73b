// The tracing floor: bench/webhook/bare-server.mjs's answer, plus, per request, the ten spans the
// runner records for one message of the benchmark flow (same names, kinds, attributes, parent
// chain and traceparent hop), through the runner's own OpenTelemetry setup (dist/telemetry/otel.js:
// Node SDK, batch processor, OTLP exporter, redaction). No Nest and no runner logic: what it costs
// over the bare server is what the SDK itself costs per traced message, the least any runner
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
  const message = tracer.startSpan(
    'message',
    { attributes: { ...tenancy, 'greentic.provider': 'webhook' } },
    trace.setSpan(context.active(), consume),
  );
  const inMessage = trace.setSpan(context.active(), message);
  const nodeAttrs = (node, operation) => ({
    'greentic.tenant': tenant,
    'greentic.env': env,
    'greentic.channel': channel,
    'greentic.team': team,
    'greentic.flow': 'bench',
    'greentic.node': node,
    'greentic.operation': operation,
  });
  const forecast = tracer.startSpan(
    'node forecast',
    { attributes: nodeAttrs('forecast', 'component.exec') },
    inMessage,
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
      trace.setSpan(inMessage, forecast),
    )
    .end();
  forecast.end();
  tracer.startSpan('node answer', { attributes: nodeAttrs('answer', 'reply') }, inMessage).end();
  tracer
    .startSpan(
      'session commit',
      {
        attributes: {
          'greentic.tenant': tenant,
          'greentic.env': env,
          'greentic.session.store': 'memory',
          'greentic.session.version': 1,
        },
      },
      inMessage,
    )
    .end();
  const egress = hop(inMessage, 'egress', outSubject, `${id}:reply`, 'egress');
  egress.end();
  message.setAttribute('greentic.outcome', 'completed');
  message.end();
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
