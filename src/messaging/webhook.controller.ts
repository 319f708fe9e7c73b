import { All, Controller, Req, Res, UseGuards } from '@nestjs/common';
import {
  ApiBody,
  ApiConsumes,
  ApiExtraModels,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ApiChannelParams,
  ApiErrors,
  ApiServedMethods,
  WEBHOOK_BODY_MODELS,
  WEBHOOK_BODY_SCHEMA,
  WebhookAccepted,
  WebhookSyncReply,
} from '../common/openapi-schemas.js';
import { MethodNotAllowedError, UnknownTenancyError } from '../common/errors.js';
import { RateLimitGuard } from '../ratelimit/rate-limit.guard.js';
import { channelOf } from '../tenancy/resolved-tenancy.js';
import { TenantGuard } from '../tenancy/tenant.guard.js';
import { IngressService } from './ingress.service.js';
import type { EgressMessage } from '../core/message-envelope.js';
import type { InboundMessage, ProviderRequest, ProviderResponse } from './providers/messaging-provider.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';

/**
 * `/webhooks/{provider}/{tenant}/{env}/{team}/{channel}`: the one HTTP door for every channel.
 * The provider verifies and parses; this controller only publishes and answers. A singleton:
 * TenantGuard resolved the tenancy, read here with `channelOf(req)`.
 */
@ApiTags('webhooks')
@ApiExtraModels(...WEBHOOK_BODY_MODELS)
@Controller('webhooks')
@UseGuards(TenantGuard, RateLimitGuard)
export class WebhookController {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly ingress: IngressService,
  ) {}

  // Route params and the channel are read off the request, not through parameter decorators:
  // each decorated parameter costs Nest a pipe run per request.
  @All(':provider/:tenant/:env/:team/:channel')
  @ApiServedMethods({
    get: "Verification challenge of the provider's webhook set-up (WhatsApp, Slack URL check...)",
    head: 'Reachability check (the challenge without a body)',
    post: 'Inbound message from a provider; published to the bus, answered 202 (or 200 with `?wait=true`)',
  })
  @ApiParam({
    name: 'provider',
    description: 'Provider id: webhook, slack, teams, telegram, whatsapp, webchat or a custom one',
    example: 'webhook',
  })
  @ApiChannelParams()
  @ApiQuery({
    name: 'wait',
    required: false,
    enum: ['true', '1'],
    description: 'Generic webhook: wait for the flow and answer its replies (also `Prefer: wait`)',
  })
  @ApiConsumes('application/json', 'application/x-www-form-urlencoded')
  @ApiBody({ schema: WEBHOOK_BODY_SCHEMA })
  @ApiResponse({ status: 202, description: 'Accepted: published for processing', type: WebhookAccepted })
  @ApiResponse({
    status: 200,
    description: "`?wait=true`: the flow's replies; or the provider's own answer (a challenge echo, an ack)",
    type: WebhookSyncReply,
  })
  @ApiErrors(400, 401, 403, 404, 405, 413, 429, 503, 504)
  async handle(@Req() req: FastifyRequest, @Res() res: FastifyReply): Promise<void> {
    const providerId = (req.params as { provider: string }).provider;
    const channel = channelOf(req);
    if (channel.channel.provider !== providerId) throw new UnknownTenancyError('provider', providerId);
    const provider = this.providers.get(providerId);
    const preq: ProviderRequest = {
      method: req.method,
      path: pathOf(req.url),
      headers: req.headers,
      query: req.query as Record<string, unknown>,
      rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    };
    // One route for all methods (a provider's GET challenge shares the POST URL): what this
    // channel's provider does not serve is a 405 naming the methods it does.
    const allow = provider.challenge ? ['GET', 'HEAD', 'POST'] : ['POST'];
    if (!allow.includes(req.method)) {
      void res.header('allow', allow.join(', '));
      throw new MethodNotAllowedError(
        `provider '${providerId}' accepts ${allow.join(', ')} only, not ${req.method}`,
        allow,
      );
    }
    if ((req.method === 'GET' || req.method === 'HEAD') && provider.challenge)
      return send(res, await provider.challenge(preq, channel));
    const result = await provider.ingress(preq, channel);
    const out =
      result.messages.length > 0
        ? await this.ingress.accept(channel, result.messages, result.wait === true, preq.rawBody.length)
        : undefined;
    if (result.response) return send(res, result.response);
    const messages = result.messages;
    if (result.wait && provider.syncResponse) {
      const replies = out?.replies ?? [];
      if (!replies.includes(null))
        return send(res, provider.syncResponse(replies as EgressMessage[], messages));
      // A null is a repeat that will not run, its first replies not at hand: a duplicate, not a 504.
      const answered = messages.filter((_, i) => replies[i] !== null);
      if (answered.length === 0) return send(res, duplicateAnswer(messages));
      return send(
        res,
        provider.syncResponse(
          replies.filter((r) => r !== null),
          answered,
        ),
      );
    }
    const repeats = out ? out.duplicates : [];
    if (repeats.length > 0 && repeats.length === messages.length) return send(res, duplicateAnswer(messages));
    const body: Record<string, unknown> = {
      accepted: true,
      messageId: messages[0]?.id,
      messageIds: messages.map((m) => m.id),
    };
    if (repeats.length > 0) body['duplicates'] = repeats;
    send(res, { status: 202, body });
  }
}

/**
 * A request whose every message repeats an id its session already sent: accepted before, so the
 * same 202 a retrying client waits for, saying that nothing new runs.
 */
function duplicateAnswer(messages: InboundMessage[]): ProviderResponse {
  return {
    status: 202,
    body: {
      accepted: true,
      duplicate: true,
      messageId: messages[0]?.id,
      messageIds: messages.map((m) => m.id),
    },
  };
}

function send(res: FastifyReply, r: ProviderResponse): void {
  if (r.headers) void res.headers(r.headers);
  void res.code(r.status);
  if (r.body === undefined) void res.send();
  // Objects go out as JSON; strings and buffers as they are (with the provider's content type).
  else void res.send(r.body);
}

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
