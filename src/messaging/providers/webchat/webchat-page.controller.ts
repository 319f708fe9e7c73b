import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Controller, Get, HttpCode, Post, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
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
@Controller('webchat')
export class WebChatPageController {
  private bundle?: string;

  constructor(private readonly dl: DirectLineService) {}

  @Get('assets/webchat.js')
  asset(@Res() res: FastifyReply): void {
    this.bundle ??= webchatBundlePath();
    void res
      .header('cache-control', 'public, max-age=86400')
      .type('application/javascript; charset=utf-8')
      .send(createReadStream(this.bundle));
  }

  @Get(':tenant/:env/:team/:channel')
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
  @UseGuards(TenantGuard)
  token(@CurrentChannel() channel: ResolvedChannel): Promise<ConversationInfo> {
    return this.dl.pageToken(webchatChannel(channel));
  }
}
