import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import {
  ApiChannelParams,
  ApiErrors,
  ConversationInfo as ConversationInfoSchema,
} from '../../../common/openapi-schemas.js';
import { GreenticError, UnknownTenancyError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { CurrentChannel } from '../../../tenancy/tenancy.decorators.js';
import { TenantGuard } from '../../../tenancy/tenant.guard.js';
import { setting } from '../provider-support.js';
import { DirectLineService } from './directline.service.js';
import type { ConversationInfo } from './directline.types.js';
import { renderPage, webchatBundlePath } from './webchat-page.js';

function webchatChannel(resolved: ResolvedChannel): ResolvedChannel {
  if (resolved.channel.provider !== 'webchat') throw new UnknownTenancyError('provider', 'webchat');
  // `page: false` keeps the channel for embedders with their own token server.
  if (resolved.channel.settings['page'] === false)
    throw new GreenticError('NotFound', 'this channel has no chat page', 404);
  return resolved;
}

/** The chat page of a WebChat channel, its token endpoint, and the Web Chat bundle it loads. */
@ApiTags('webchat')
@Controller('webchat')
export class WebChatPageController {
  private bundle?: string;

  constructor(private readonly dl: DirectLineService) {}

  @Get('assets/webchat.js')
  @ApiOperation({ summary: 'The Bot Framework Web Chat bundle the chat page loads' })
  @ApiProduces('application/javascript')
  @ApiOkResponse({ schema: { type: 'string' } })
  asset(@Res() res: FastifyReply): void {
    this.bundle ??= webchatBundlePath();
    void res
      .header('cache-control', 'public, max-age=86400')
      .type('application/javascript; charset=utf-8')
      .send(createReadStream(this.bundle));
  }

  @Get(':tenant/:env/:team/:channel')
  @ApiOperation({ summary: "The channel's chat page" })
  @ApiChannelParams()
  @ApiProduces('text/html')
  @ApiOkResponse({ schema: { type: 'string' } })
  @ApiErrors(404)
  @UseGuards(TenantGuard)
  page(
    @CurrentChannel() channel: ResolvedChannel,
    @Req() req: FastifyRequest,
    @Res() res: FastifyReply,
  ): void {
    const resolved = webchatChannel(channel);
    const nonce = randomBytes(16).toString('base64');
    const p = req.params as Record<string, string>;
    void res.header(
      'content-security-policy',
      `default-src 'self'; script-src 'self' 'nonce-${nonce}'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob: https:; connect-src 'self' ws: wss:; font-src 'self' data:; frame-ancestors 'self'`,
    );
    void res.header('cache-control', 'no-store');
    void res.type('text/html; charset=utf-8').send(
      renderPage({
        title: setting(resolved, 'title') ?? 'Chat',
        accent: setting(resolved, 'accent_color') ?? '#0f766e',
        base: `/webchat/${p['tenant']}/${p['env']}/${p['team']}/${p['channel']}`,
        nonce,
      }),
    );
  }

  /** A token for a new conversation; the page calls it so the channel secret stays on the server. */
  @Post(':tenant/:env/:team/:channel/token')
  @HttpCode(200)
  @ApiOperation({ summary: 'A Direct Line token for the chat page (no secret needed)' })
  @ApiChannelParams()
  @ApiOkResponse({ type: ConversationInfoSchema })
  @ApiErrors(403, 404, 429)
  @UseGuards(TenantGuard)
  token(@CurrentChannel() channel: ResolvedChannel): Promise<ConversationInfo> {
    return this.dl.pageToken(webchatChannel(channel));
  }
}
