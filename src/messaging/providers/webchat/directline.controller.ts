import { Controller, Get, Header, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiOperation, ApiParam, ApiQuery, ApiResponse } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ActivitySet as ActivitySetSchema,
  ApiDirectLine,
  ConversationInfo as ConversationInfoSchema,
  DirectLineActivity,
  DirectLineTokenRequest,
  ResourceId,
} from '../../../common/openapi-schemas.js';
import { UnknownTenancyError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { channelOf } from '../../../tenancy/resolved-tenancy.js';
import { TenantGuard } from '../../../tenancy/tenant.guard.js';
import { DirectLineService } from './directline.service.js';
import type { ConversationInfo } from './directline.types.js';
import { WebChatChannels } from './webchat-channels.js';

type Request = FastifyRequest<{ Params: Record<string, string>; Querystring: Record<string, unknown> }>;

const one = (v: unknown): string | undefined =>
  typeof v === 'string' ? v : Array.isArray(v) && typeof v[0] === 'string' ? v[0] : undefined;

/**
 * The Direct Line 3.0 REST contract. The same endpoints serve under a channel's own base
 * (`/webchat/{tenant}/{env}/{team}/{channel}/v3/directline`) and, for the configured default
 * channel, under the plain `/v3/directline` that clients use when given no domain.
 */
abstract class DirectLineEndpoints {
  constructor(protected readonly dl: DirectLineService) {}

  protected abstract channel(req: Request): ResolvedChannel;
  protected abstract prefix(req: Request): string;

  @Post('tokens/generate')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange the channel secret for a conversation token' })
  @ApiBody({ type: DirectLineTokenRequest, required: false })
  @ApiOkResponse({ type: ConversationInfoSchema })
  async generate(@Req() req: Request): Promise<ConversationInfo> {
    const r = this.channel(req);
    return this.dl.generateToken(r, await this.dl.authenticate(r, req.headers.authorization), req.body);
  }

  @Post('tokens/refresh')
  @HttpCode(200)
  @ApiOperation({ summary: 'Refresh a token before it expires' })
  @ApiOkResponse({ type: ConversationInfoSchema })
  async refresh(@Req() req: Request): Promise<ConversationInfo> {
    const r = this.channel(req);
    return this.dl.refreshToken(r, await this.dl.authenticate(r, req.headers.authorization));
  }

  @Post('conversations')
  @ApiOperation({ summary: 'Start a conversation (or resume the one a token is bound to)' })
  @ApiBody({ type: DirectLineTokenRequest, required: false })
  @ApiResponse({ status: 201, description: 'Started', type: ConversationInfoSchema })
  @ApiResponse({
    status: 200,
    description: "The token's conversation already existed",
    type: ConversationInfoSchema,
  })
  async start(@Req() req: Request, @Res({ passthrough: true }) res: FastifyReply): Promise<ConversationInfo> {
    const r = this.channel(req);
    const { created, info } = await this.dl.startConversation(
      r,
      await this.dl.authenticate(r, req.headers.authorization),
      req.body,
      this.streamBase(req),
    );
    void res.code(created ? 201 : 200);
    return info;
  }

  @Get('conversations/:conversationId')
  @ApiOperation({ summary: 'Reconnect: a fresh stream URL for the conversation' })
  @ApiParam({ name: 'conversationId' })
  @ApiQuery({ name: 'watermark', required: false })
  @ApiOkResponse({ type: ConversationInfoSchema })
  async reconnect(@Req() req: Request): Promise<ConversationInfo> {
    const r = this.channel(req);
    const auth = await this.dl.authenticate(r, req.headers.authorization);
    return this.dl.reconnect(
      r,
      auth,
      String(req.params['conversationId']),
      one(req.query['watermark']),
      this.streamBase(req),
    );
  }

  @Post('conversations/:conversationId/activities')
  @HttpCode(200)
  @ApiOperation({ summary: 'Send an activity from the user' })
  @ApiParam({ name: 'conversationId' })
  @ApiBody({ type: DirectLineActivity })
  @ApiOkResponse({ type: ResourceId })
  @ApiResponse({ status: 413, description: 'Body too large' })
  async post(@Req() req: Request): Promise<{ id: string }> {
    const r = this.channel(req);
    return this.dl.postActivity(
      r,
      await this.dl.authenticate(r, req.headers.authorization),
      String(req.params['conversationId']),
      req.body,
    );
  }

  @Get('conversations/:conversationId/activities')
  @ApiOperation({ summary: 'Activities after the watermark (polling clients)' })
  @ApiParam({ name: 'conversationId' })
  @ApiQuery({ name: 'watermark', required: false })
  @ApiOkResponse({ type: ActivitySetSchema })
  // Serialised by the service, so one activity that cannot be serialised never fails the history.
  @Header('content-type', 'application/json; charset=utf-8')
  async list(@Req() req: Request): Promise<string> {
    const r = this.channel(req);
    const auth = await this.dl.authenticate(r, req.headers.authorization);
    return this.dl.activitiesJson(r, auth, String(req.params['conversationId']), one(req.query['watermark']));
  }

  private streamBase(req: Request): string {
    return `${req.protocol === 'https' ? 'wss' : 'ws'}://${req.headers.host ?? 'localhost'}${this.prefix(req)}`;
  }
}

@ApiDirectLine()
@Controller('webchat/:tenant/:env/:team/:channel/v3/directline')
@UseGuards(TenantGuard)
export class ChannelDirectLineController extends DirectLineEndpoints {
  constructor(dl: DirectLineService) {
    super(dl);
  }

  protected channel(req: Request): ResolvedChannel {
    const r = channelOf(req);
    if (r.channel.provider !== 'webchat') throw new UnknownTenancyError('provider', 'webchat');
    return r;
  }

  protected prefix(req: Request): string {
    const p = req.params;
    return `/webchat/${p['tenant']}/${p['env']}/${p['team']}/${p['channel']}/v3/directline`;
  }
}

@ApiDirectLine()
@Controller('v3/directline')
export class DefaultDirectLineController extends DirectLineEndpoints {
  constructor(
    dl: DirectLineService,
    private readonly channels: WebChatChannels,
  ) {
    super(dl);
  }

  protected channel(req: Request): ResolvedChannel {
    const r = this.channels.resolveDefault();
    // The exception filter logs refusals with the route's tenancy params; this route has none of its own.
    Object.assign(req.params, {
      tenant: r.tenant.tenantId,
      env: r.tenant.envId,
      team: r.tenant.teamId ?? 'default',
      channel: r.channel.id,
    });
    return r;
  }

  protected prefix(): string {
    return '/v3/directline';
  }
}
