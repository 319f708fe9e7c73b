import { Injectable, type NestMiddleware } from '@nestjs/common';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { NextFunction, Request, Response } from 'express';

/**
 * Opens the root span of a message's trace: `webhook {provider}`, active for everything the
 * request does (tenancy, provider parsing, the ingress publish and, for a waiting caller, the
 * reply). A caller's own `traceparent` header is honoured, so the runner joins its trace. Path
 * segments go on the span as tenancy attributes; the body (the user's text) never does.
 */
@Injectable()
export class WebhookSpanMiddleware implements NestMiddleware {
  private readonly tracer = trace.getTracer('greentic-runner');

  use(req: Request, res: Response, next: NextFunction): void {
    const path = (req.originalUrl ?? req.url).split('?')[0] ?? '';
    const [, , provider = '', tenant = '', env = '', team = '', channel = ''] = path.split('/');
    const parent = propagation.extract(context.active(), req.headers);
    const span = this.tracer.startSpan(
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
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      span.setAttribute('http.response.status_code', res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  }
}
