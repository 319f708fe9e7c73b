import { ArgumentsHost, Catch, HttpException, Logger, Optional, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { throwError, type Observable } from 'rxjs';
import { parseSubject } from '../core/subjects.js';
import type { BusContext } from './bus.context.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { errorText, GreenticError, PayloadTooLargeError } from '../common/errors.js';

/** What Fastify's body parsing fails with (Nest wraps it in an HttpException as the cause). */
interface FastifyBodyError {
  code?: string;
  statusCode?: number;
  message?: string;
}

/**
 * One mapping from errors to answers. HTTP: a JSON `{ error: { code, message, ... } }` with the
 * domain status, never a stack. Bus: the error goes back to the bus as a GreenticError, and the
 * bus redelivers or dead-letters it.
 */
@Catch()
export class GreenticExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  constructor(@Optional() private readonly bundles?: BundleRegistry) {}

  catch(exception: unknown, host: ArgumentsHost): unknown {
    if (host.getType() === 'rpc') return this.rpc(exception, host);
    const ctx = host.switchToHttp();
    const req = ctx.getRequest<FastifyRequest>();
    const reply = ctx.getResponse<FastifyReply>();
    const params = (req.params ?? {}) as Record<string, string | undefined>;
    const where = {
      tenant: params['tenant'],
      env: params['env'],
      channel: params['channel'],
      method: req.method,
      path: req.url.split('?')[0],
    };
    // The client went away before its body was read (Node's "aborted"): nobody is left to answer,
    // and it is not the runner's failure, so it is no 500 in the error log. 499 is nginx's
    // "client closed request".
    if (req.raw.readableAborted) {
      this.logger.warn({ ...where, status: 499, code: 'request_aborted' }, 'request aborted by the client');
      // Answered all the same if the socket is somehow still open: a request is never left hanging.
      if (!reply.sent && !reply.raw.headersSent && !reply.raw.destroyed)
        void reply
          .code(400)
          .send({ error: { code: 'request_aborted', message: 'the request body was cut off' } });
      return undefined;
    }
    const { status, body } = this.map(exception);
    const log = { ...where, status, code: body.error.code, reason: body.error.message };
    if (status >= 500)
      this.logger.error(
        { ...log, err: exception instanceof Error ? exception.stack : String(exception) },
        'request failed',
      );
    else this.logger.warn(log, 'request refused');
    if (!reply.sent && !reply.raw.headersSent) void reply.code(status).send(body);
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
      const cause = exception.cause as FastifyBodyError | undefined;
      if (cause?.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && this.bundles)
        return this.map(new PayloadTooLargeError(this.bundles.bundle.limits.maxBodyBytes));
      const r = exception.getResponse();
      const message = typeof r === 'string' ? r : ((r as { message?: unknown }).message ?? exception.message);
      const code = cause?.code?.startsWith('FST_ERR_CTP') ? 'bad_request' : `http_${exception.getStatus()}`;
      return {
        status: exception.getStatus(),
        body: {
          error: {
            code,
            message: Array.isArray(message) ? message.join('; ') : String(message),
          },
        },
      };
    }
    return { status: 500, body: { error: { code: 'internal', message: 'internal error' } } };
  }

  /**
   * A bus delivery's failure goes back to the bus, which applies one rule to every consumer
   * (`isPermanentError`): dead-lettered at once when no retry can fix it, else redelivered with
   * backoff, then dead-lettered; its dead letter and log line are the bus's, with the tenant.
   * Here Nest's own exceptions (a pipe's 400) only take the domain error shape that rule reads.
   */
  private rpc(exception: unknown, host: ArgumentsHost): Observable<never> {
    if (exception instanceof GreenticError) return throwError(() => exception);
    if (exception instanceof HttpException) {
      const { status, body } = this.map(exception);
      return throwError(() => new GreenticError(body.error.code, body.error.message, status));
    }
    // Not a refusal the runner raised: the bus logs its text, the stack is only here.
    const subject = host.switchToRpc().getContext<BusContext>()?.getSubject?.();
    this.logger.error(
      {
        subject,
        tenant: subject === undefined ? undefined : parseSubject(subject)?.tenant,
        err: exception instanceof Error ? exception.stack : errorText(exception),
      },
      'bus handler failed',
    );
    return throwError(() => exception);
  }
}

/** Where a path names its tenant: the webhook, Direct Line and admin routes. */
const TENANT_IN_PATH = /^\/(?:webhooks\/[^/]+|webchat|admin\/tenants)\/([^/?]+)/;
/** Paths are logged this long at most (a 414 is one that was too long to route). */
const LOGGED_PATH_MAX = 200;
const frameworkLogger = new Logger('Errors');

/**
 * Fastify's refusals before any route runs (Nest's filter never sees them): an undecodable escape
 * in the path, a path segment over the router's maxParamLength. Answered in the runner's error
 * shape and logged as refusals with the tenant the path names, as the filter does for the rest.
 * For the adapter's `frameworkErrors` option.
 */
export function answerFrameworkError(
  error: { code?: string; message: string },
  req: FastifyRequest,
  reply: FastifyReply,
): void {
  const path = req.url.split('?')[0]!.slice(0, LOGGED_PATH_MAX);
  const [status, code, message] =
    error.code === 'FST_ERR_BAD_URL'
      ? [400, 'bad_url', 'the path is not valid percent-encoding']
      : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
        ? [414, 'path_segment_too_long', 'a path segment is longer than the router accepts']
        : [500, 'internal', 'internal error'];
  const where = { tenant: TENANT_IN_PATH.exec(path)?.[1], method: req.method, path, status, code };
  if (status >= 500) frameworkLogger.error({ ...where, err: error.message }, 'request failed');
  else frameworkLogger.warn({ ...where, reason: message }, 'request refused');
  void reply.code(status).send({ error: { code, message } });
}
