import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { FastifyInstance, onRequestHookHandler } from 'fastify';
import { GreenticError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { type ChannelCoords, WebChatChannels } from './webchat-channels.js';
import { allowedOrigins, allowOriginFor } from './webchat-origins.js';

const ID = '[A-Za-z0-9_-]+';
/** The Direct Line REST routes; `conversations/{id}/stream` (a WebSocket upgrade) needs no CORS. */
const DIRECTLINE = 'v3/directline/(?:tokens/(?:generate|refresh)|conversations(?:/[^/]+(?:/activities)?)?)';
const CHANNEL_ROUTE = new RegExp(`^/webchat/(${ID})/(${ID})/(${ID})/(${ID})/(?:token|${DIRECTLINE})/?$`);
const DEFAULT_ROUTE = new RegExp(`^/${DIRECTLINE}/?$`);

/**
 * What Web Chat sends besides the CORS-safelisted headers: botframework-directlinejs adds
 * `x-ms-bot-agent`, and its rxjs ajax `X-Requested-With` (it does not mark its calls cross-domain).
 */
const ALLOW_HEADERS = 'Authorization, Content-Type, x-ms-bot-agent, X-Requested-With';
/** Chromium caps a preflight's cache at 2 h; ten minutes lets a changed list take effect soon. */
const MAX_AGE_S = '600';

/** The channel a CORS-eligible path names, `default` for the plain `/v3/directline` routes. */
export type CorsTarget = ChannelCoords | 'default';

export function corsTarget(path: string): CorsTarget | undefined {
  const m = CHANNEL_ROUTE.exec(path);
  if (m) return { tenant: m[1]!, env: m[2]!, team: m[3]!, channel: m[4]! };
  return DEFAULT_ROUTE.test(path) ? 'default' : undefined;
}

/**
 * CORS for the Direct Line routes and the chat page's token endpoint, so Web Chat embedded on
 * another site can talk to the runner. The allowed origins are the channel's own
 * (`settings.allowed_origins`), so the answer depends on the channel the path names.
 *
 * A preflight from an allowed origin is answered here (204); from any other, 403 in the error
 * shape and no `Access-Control-Allow-Origin`. Actual requests go on to their route either way;
 * only an allowed origin's carry the CORS headers, so a browser hands nothing to a page of
 * another origin. Requests without `Origin` (servers, curl) are not CORS and pass untouched.
 */
export function webChatCorsHook(
  lookup: (target: CorsTarget) => ResolvedChannel,
  logger: Pick<Logger, 'warn'>,
): onRequestHookHandler {
  return (req, reply, done) => {
    const url = req.url;
    // Every request of the runner passes here: leave the others after one prefix test.
    if (!url.startsWith('/webchat/') && !url.startsWith('/v3/directline/')) return done();
    const q = url.indexOf('?');
    const target = corsTarget(q < 0 ? url : url.slice(0, q));
    if (!target) return done();
    void reply.header('vary', 'Origin');
    const origin = req.headers.origin;
    if (origin === undefined) return done();
    const preflight = req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;

    let resolved: ResolvedChannel;
    try {
      resolved = lookup(target);
    } catch (e) {
      // An actual request meets the same refusal on its route (the exception filter logs it).
      if (!preflight) return done();
      if (!(e instanceof GreenticError)) return done(e as Error);
      logger.warn(
        { ...coordsOf(target), origin, status: e.httpStatus, reason: e.message },
        'webchat CORS preflight refused',
      );
      void reply.code(e.httpStatus).send({ error: { code: e.code, message: e.message } });
      return;
    }

    const allow = allowOriginFor(origin, allowedOrigins(resolved.channel), req.host);
    if (allow === undefined) {
      const t = resolved.tenant;
      logger.warn(
        {
          tenant: t.tenantId,
          env: t.envId,
          team: t.teamId,
          channel: resolved.channel.id,
          origin,
          method: preflight ? 'OPTIONS' : req.method,
        },
        preflight ? 'webchat CORS preflight refused' : 'webchat request from an origin not allowed',
      );
      if (!preflight) return done();
      void reply.code(403).send({
        error: {
          code: 'origin_not_allowed',
          message: `origin ${origin.slice(0, 200)} may not call WebChat channel '${resolved.channel.id}' (settings.allowed_origins)`,
        },
      });
      return;
    }

    void reply.header('access-control-allow-origin', allow);
    if (!preflight) {
      // Direct Line clients honour Retry-After on a 429.
      void reply.header('access-control-expose-headers', 'Retry-After');
      return done();
    }
    void reply
      .code(204)
      .header('access-control-allow-methods', 'GET, POST, OPTIONS')
      .header('access-control-allow-headers', ALLOW_HEADERS)
      .header('access-control-max-age', MAX_AGE_S)
      .send();
  };
}

function coordsOf(target: CorsTarget): Partial<Record<'tenant' | 'env' | 'team' | 'channel', string>> {
  return target === 'default' ? {} : target;
}

/**
 * Installs the CORS hook on the runner's Fastify instance. A hook of ours rather than
 * `@fastify/cors`: the allowed origins depend on the channel in the path, a refused preflight
 * must be a 403 in the runner's error shape (the plugin answers it 204 without the header, or
 * 404), and the plugin's catch-all OPTIONS route would answer preflights on every other route.
 */
@Injectable()
export class WebChatCors implements OnModuleInit {
  private readonly logger = new Logger(WebChatCors.name);

  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly channels: WebChatChannels,
  ) {}

  onModuleInit(): void {
    // Runs before listen(), while Fastify still takes hooks; an application context has no HTTP.
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    if (!fastify) return;
    fastify.addHook(
      'onRequest',
      webChatCorsHook(
        (t) => (t === 'default' ? this.channels.resolveDefault() : this.channels.resolve(t)),
        this.logger,
      ),
    );
  }
}
