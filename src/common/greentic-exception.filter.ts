import {
  ArgumentsHost,
  Catch,
  HttpException,
  Inject,
  Logger,
  Optional,
  type ExceptionFilter,
} from '@nestjs/common';
import type { Request, Response } from 'express';
import { from, of, throwError, type Observable } from 'rxjs';
import { MESSAGE_BUS, type MessageBus } from '../messaging/message-bus.js';
import type { BusContext } from '../messaging/bus.context.js';
import { GreenticError } from './errors.js';

/** Refusals that no retry can fix; anything else (409 conflict, 429 busy, 5xx) is redelivered. */
const POISON_STATUSES = new Set([400, 403, 404, 413, 422]);

interface BodyParserError {
  type?: string;
  status?: number;
  limit?: number;
  message?: string;
}

/**
 * One mapping from errors to answers. HTTP: a JSON `{ error: { code, message, ... } }` with the
 * domain status, never a stack. Bus: refusals no retry can fix are dead-lettered at once and acked;
 * anything else is rethrown so the bus redelivers.
 */
@Catch()
export class GreenticExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(@Optional() @Inject(MESSAGE_BUS) private readonly bus?: MessageBus) {}

  catch(exception: unknown, host: ArgumentsHost): unknown {
    if (host.getType() === 'rpc') return this.rpc(exception, host);
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<Request>();
    const res = ctx.getResponse<Response>();
    const { status, body } = this.map(exception);
    const params = req.params ?? {};
    const log = {
      tenant: params['tenant'],
      env: params['env'],
      channel: params['channel'],
      method: req.method,
      path: req.path,
      status,
      code: body.error.code,
      reason: body.error.message,
    };
    if (status >= 500)
      this.logger.error(
        { ...log, err: exception instanceof Error ? exception.stack : String(exception) },
        'request failed',
      );
    else this.logger.warn(log, 'request refused');
    if (!res.headersSent) res.status(status).json(body);
    return undefined;
  }

  map(exception: unknown): {
    status: number;
    body: { error: Record<string, unknown> & { code: string; message: string } };
  } {
    if (exception instanceof GreenticError) {
      return {
        status: exception.httpStatus,
        body: { error: { code: exception.code, message: exception.message, ...exception.details } },
      };
    }
    if (exception instanceof HttpException) {
      // Express body-parser errors arrive wrapped, with the parser's error as the cause.
      const cause = exception.cause as BodyParserError | undefined;
      if (cause?.type === 'entity.too.large') return this.map(cause);
      const r = exception.getResponse();
      const message = typeof r === 'string' ? r : ((r as { message?: unknown }).message ?? exception.message);
      return {
        status: exception.getStatus(),
        body: {
          error: {
            code: `http_${exception.getStatus()}`,
            message: Array.isArray(message) ? message.join('; ') : String(message),
          },
        },
      };
    }
    const bp = exception as BodyParserError;
    if (bp && typeof bp === 'object' && bp.type === 'entity.too.large') {
      return {
        status: 413,
        body: {
          error: {
            code: 'payload_too_large',
            message: `request body exceeds ${bp.limit} bytes`,
            limitBytes: bp.limit,
          },
        },
      };
    }
    if (bp && typeof bp === 'object' && typeof bp.type === 'string' && bp.status && bp.status < 500) {
      return {
        status: bp.status,
        body: { error: { code: 'bad_request', message: bp.message ?? 'bad request' } },
      };
    }
    return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
  }

  private rpc(exception: unknown, host: ArgumentsHost): Observable<unknown> {
    const ctx = host.switchToRpc().getContext<BusContext>();
    const subject = typeof ctx?.getSubject === 'function' ? ctx.getSubject() : undefined;
    const { status, body } = this.map(exception);
    const data = host.switchToRpc().getData<unknown>();
    // 409 (conflict) and 429 (rate limited, busy) are not the message's fault: they are redelivered
    // (after the error's retryAfter, where it has one).
    if (POISON_STATUSES.has(status) && subject && this.bus) {
      this.logger.warn(
        { subject, status, code: body.error.code, reason: body.error.message },
        'bus message refused, dead-lettered',
      );
      const dlq = subject.replace(/^greentic\.messaging\.(ingress|egress)\./, 'greentic.messaging.dlq.');
      return from(this.bus.publish(dlq, { subject, error: body.error, data }));
    }
    this.logger.error(
      { subject, status, code: body.error.code, reason: body.error.message },
      'bus message failed, will be redelivered',
    );
    return exception instanceof Error ? throwError(() => exception) : of(undefined);
  }
}
