import { context, propagation, SpanKind, SpanStatusCode, trace, type Context } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';

const WEBHOOKS = '/webhooks/';
const SPAN = Symbol('greentic.webhookSpan');

interface SpanCarrier {
  [SPAN]?: Context;
}

/**
 * Opens the root span of a message's trace: `webhook {provider}`, active for everything the
 * request does (tenancy, provider parsing, the ingress publish and, for a waiting caller, the
 * reply). A caller's own `traceparent` header is honoured, so the runner joins its trace. Path
 * segments go on the span as tenancy attributes; the body (the user's text) never does.
 *
 * The span starts when the request arrives (so it covers reading the body) and is made the active
 * context from the handler on (preHandler, after the body is read: stream events would not carry
 * it), so the ingress publish and the envelope's `traceparent` follow it with nothing passed.
 */
export function installWebhookSpans(fastify: FastifyInstance): void {
  const tracer = trace.getTracer('greentic-runner');
  fastify.addHook('onRequest', (req, reply, done) => {
    if (!req.url.startsWith(WEBHOOKS)) return done();
    const path = req.url.split('?')[0] ?? '';
    const [, , provider = '', tenant = '', env = '', team = '', channel = ''] = path.split('/');
    const parent = propagation.extract(context.active(), req.headers);
    const span = tracer.startSpan(
      `webhook ${provider}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': req.method,
          'http.route': '/webhooks/{provider}/{tenant}/{env}/{team}/{channel}',
          'greentic.provider': provider,
          'greentic.tenant': tenant,
          'greentic.env': env,
          'greentic.team': team,
          'greentic.channel': channel,
        },
      },
      parent,
    );
    (req as SpanCarrier)[SPAN] = trace.setSpan(parent, span);
    // 'close' comes once per response, after 'finish' or when the connection drops first.
    reply.raw.once('close', () => {
      span.setAttribute('http.response.status_code', reply.raw.statusCode);
      if (reply.raw.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    });
    done();
  });
  fastify.addHook('preHandler', (req, _reply, done) => {
    const ctx = (req as SpanCarrier)[SPAN];
    if (ctx) context.with(ctx, done);
    else done();
  });
}
