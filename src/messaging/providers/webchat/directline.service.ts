import { randomBytes } from 'node:crypto';
import { Injectable, Logger, type OnModuleDestroy } from '@nestjs/common';
import { BadRequestError, GreenticError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { tenantKey } from '../../../core/tenant-ctx.js';
import { IngressService } from '../../ingress.service.js';
import type { EgressMessage, OutboundReply } from '../../../core/message-envelope.js';
import { EgressError, ProviderAuthError } from '../messaging-provider.js';
import {
  ADAPTIVE_CARD_CONTENT_TYPE,
  asAdaptiveCardContent,
  isAdaptiveCard,
  submitEcho,
} from '../adaptive-card-text.js';
import { localeOf } from '../locale-tag.js';
import { channelSecret, isRecord, normalizeCard, safeEqual, setting, str } from '../provider-support.js';
import { activitySetJson } from './activity-set-json.js';
import { MemoryDirectLineStore, type DirectLineStore } from './directline.store.js';
import { DirectLineTokens, type DirectLineClaims } from './directline.tokens.js';
import type { Activity, ActivitySet, ChannelAccount, ConversationInfo } from './directline.types.js';

const DEFAULT_TOKEN_TTL_S = 1800;
/** A stream URL must be opened soon after it is handed out; reconnecting asks for a new one. */
const STREAM_TOKEN_TTL_S = 120;
const ID_MAX = 256;
const TEXT_MAX = 64 * 1024;
/** Fields of an activity the service owns; a client cannot set them. */
const SERVER_FIELDS = [
  'id',
  'timestamp',
  'localTimestamp',
  'channelId',
  'conversation',
  'serviceUrl',
  'recipient',
  'replyToId',
];

export type DirectLineAuth = { kind: 'secret' } | { kind: 'token'; claims: DirectLineClaims };

const newConversationId = () => randomBytes(16).toString('base64url');

/**
 * The Direct Line 3.0 service the WebChat channel runs inside the runner: tokens, conversations,
 * activities and their watermarks, with user messages handed to the flow through IngressService
 * and the flow's replies appended by the WebChat provider's `send` (the egress path).
 *
 * Auth, as Direct Line has it: the channel's secret (secret_refs `directline_secret`) opens
 * everything on the channel; a token opens the one conversation it was generated for.
 */
@Injectable()
export class DirectLineService implements OnModuleDestroy {
  private readonly logger = new Logger(DirectLineService.name);
  private readonly tokens = new DirectLineTokens();
  readonly store: DirectLineStore;
  private readonly memory: MemoryDirectLineStore;

  constructor(
    private readonly secrets: SecretsService,
    private readonly ingress: IngressService,
  ) {
    this.memory = new MemoryDirectLineStore();
    this.store = this.memory;
  }

  onModuleDestroy(): void {
    this.memory.close();
  }

  async authenticate(resolved: ResolvedChannel, authorization: string | undefined): Promise<DirectLineAuth> {
    const m = authorization ? /^Bearer\s+(\S+)$/i.exec(authorization) : null;
    if (!m)
      throw new ProviderAuthError(
        'webchat',
        'missing Authorization: Bearer secret or token',
        401,
        'MissingAuth',
      );
    const bearer = m[1]!;
    const secret = await this.secret(resolved);
    if (safeEqual(bearer, secret)) return { kind: 'secret' };
    return {
      kind: 'token',
      claims: await this.tokens.verify(secret, audience(resolved), bearer, 'conversation'),
    };
  }

  async generateToken(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    body: unknown,
  ): Promise<ConversationInfo> {
    if (auth.kind !== 'secret')
      throw new ProviderAuthError(
        'webchat',
        'tokens/generate needs the Direct Line secret',
        403,
        'Forbidden',
      );
    return this.issue(resolved, newConversationId(), userOf(body));
  }

  async refreshToken(resolved: ResolvedChannel, auth: DirectLineAuth): Promise<ConversationInfo> {
    if (auth.kind !== 'token') throw new BadRequestError('tokens/refresh refreshes a token, not the secret');
    return this.issue(resolved, auth.claims.conversationId, auth.claims.userId);
  }

  /** A token for a fresh conversation, for the runner's own chat page (which never sees the secret). */
  async pageToken(resolved: ResolvedChannel): Promise<ConversationInfo> {
    return this.issue(resolved, newConversationId(), undefined);
  }

  async startConversation(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    body: unknown,
    streamBase: string,
  ): Promise<{ created: boolean; info: ConversationInfo }> {
    const key = channelKey(resolved);
    let info: ConversationInfo;
    if (auth.kind === 'secret') {
      info = await this.issue(resolved, newConversationId(), userOf(body));
    } else {
      info = await this.issue(resolved, auth.claims.conversationId, auth.claims.userId);
    }
    const created = !(await this.store.exists(key, info.conversationId));
    if (created) await this.store.create(key, info.conversationId);
    return {
      created,
      info: { ...info, streamUrl: await this.streamUrl(resolved, streamBase, info.conversationId) },
    };
  }

  async reconnect(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    conversationId: string,
    watermark: string | undefined,
    streamBase: string,
  ): Promise<ConversationInfo> {
    this.assertConversation(auth, conversationId);
    await this.requireConversation(resolved, conversationId);
    const info = await this.issue(
      resolved,
      conversationId,
      auth.kind === 'token' ? auth.claims.userId : undefined,
    );
    return {
      ...info,
      streamUrl: await this.streamUrl(resolved, streamBase, conversationId, parseWatermark(watermark)),
    };
  }

  async postActivity(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    conversationId: string,
    body: unknown,
  ): Promise<{ id: string }> {
    this.assertConversation(auth, conversationId);
    await this.requireConversation(resolved, conversationId);
    if (!isRecord(body)) throw new BadRequestError('activity must be a JSON object', { code: 'BadArgument' });
    const type = str(body['type']);
    if (!type) throw new BadRequestError("activity needs a 'type'", { code: 'BadArgument' });
    const from = isRecord(body['from']) ? body['from'] : undefined;
    const fromId = str(from?.['id']) ?? (auth.kind === 'token' ? auth.claims.userId : undefined);
    if (!fromId || fromId.length > ID_MAX)
      throw new BadRequestError("activity needs 'from.id' (at most 256 characters)", { code: 'BadArgument' });
    if (auth.kind === 'token' && auth.claims.userId && fromId !== auth.claims.userId) {
      throw new ProviderAuthError(
        'webchat',
        'from.id differs from the user the token was issued to',
        403,
        'Forbidden',
      );
    }
    const text = body['text'];
    if (text !== undefined && (typeof text !== 'string' || text.length > TEXT_MAX)) {
      throw new BadRequestError(`'text' must be a string of at most ${TEXT_MAX} characters`, {
        code: 'BadArgument',
      });
    }
    const activity: Activity = { ...(body as Activity) };
    for (const f of SERVER_FIELDS) delete activity[f];
    activity.type = type;
    activity.from = { ...(from as Partial<ChannelAccount>), id: fromId, role: 'user' };
    activity.timestamp = new Date().toISOString();
    activity.channelId = 'directline';
    activity.conversation = { id: conversationId };
    const clientId = isRecord(body['channelData']) ? str(body['channelData']['clientActivityID']) : undefined;
    const { activity: stored, duplicate } = await this.store.append(
      channelKey(resolved),
      conversationId,
      activity,
      clientId ? `client:${clientId}` : undefined,
    );
    if (duplicate) {
      this.logger.log(
        {
          tenant: resolved.tenant.tenantId,
          channel: resolved.channel.id,
          conversationId,
          activityId: stored.id,
        },
        'webchat activity re-posted, answered once',
      );
      return { id: stored.id! };
    }
    if (type === 'message') {
      // Web Chat sends a card's Action.Submit data as `value`, without text; `locale` is the user's.
      const value = isRecord(stored.value) ? stored.value : undefined;
      const locale = localeOf(stored['locale']);
      await this.ingress.accept(
        resolved,
        [
          {
            id: stored.id!,
            conversationId,
            userId: fromId,
            text: stored.text || (value ? submitEcho(value) : ''),
            ...(value ? { action: { type: 'value', ...value } } : {}),
            ...(locale ? { locale } : {}),
            timestamp: stored.timestamp,
            raw: stored,
            meta: { replyToId: stored.id },
          },
        ],
        false,
      );
    }
    return { id: stored.id! };
  }

  async activities(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    conversationId: string,
    watermark: string | undefined,
  ): Promise<ActivitySet> {
    this.assertConversation(auth, conversationId);
    await this.requireConversation(resolved, conversationId);
    return this.store.since(channelKey(resolved), conversationId, parseWatermark(watermark));
  }

  /** `GET …/activities` as the JSON sent (see `json`). */
  async activitiesJson(
    resolved: ResolvedChannel,
    auth: DirectLineAuth,
    conversationId: string,
    watermark: string | undefined,
  ): Promise<string> {
    return this.json(
      resolved,
      conversationId,
      await this.activities(resolved, auth, conversationId, watermark),
    );
  }

  /**
   * An activity set's JSON for polling and the stream: one activity that cannot be serialised is
   * replaced by an event (and logged), never failing the whole history.
   */
  json(resolved: ResolvedChannel, conversationId: string, set: ActivitySet): string {
    return activitySetJson(set, (activity, err) =>
      this.logger.warn(
        {
          tenant: resolved.tenant.tenantId,
          channel: resolved.channel.id,
          conversationId,
          activityId: activity.id,
          reason: err.message,
        },
        'webchat activity cannot be serialised, sent as an omitted-activity event',
      ),
    );
  }

  /** The stream's `t` query token (or a conversation token / the secret in the Authorization header). */
  async authorizeStream(
    resolved: ResolvedChannel,
    conversationId: string,
    streamToken: string | undefined,
    authorization: string | undefined,
  ): Promise<void> {
    if (streamToken) {
      const claims = await this.tokens.verify(
        await this.secret(resolved),
        audience(resolved),
        streamToken,
        'stream',
      );
      if (claims.conversationId !== conversationId)
        throw new ProviderAuthError('webchat', 'stream token is for another conversation', 403, 'Forbidden');
    } else {
      this.assertConversation(await this.authenticate(resolved, authorization), conversationId);
    }
    await this.requireConversation(resolved, conversationId);
  }

  /** The flow's replies, as bot activities on the conversation; idempotent per egress message and reply. */
  async deliver(resolved: ResolvedChannel, msg: EgressMessage): Promise<void> {
    const key = channelKey(resolved);
    if (!(await this.store.exists(key, msg.conversationId))) {
      throw new EgressError(
        'webchat',
        `conversation '${msg.conversationId}' is gone (expired or the runner restarted)`,
        false,
      );
    }
    const bot: ChannelAccount = {
      id: setting(resolved, 'bot_id') ?? 'greentic-bot',
      name: setting(resolved, 'bot_name') ?? 'Greentic',
      role: 'bot',
    };
    const replyToId = str(msg.meta?.['replyToId']);
    for (const [i, reply] of msg.replies.entries()) {
      const content = toDirectLineContent(reply);
      if (!content) continue;
      const activity: Activity = {
        type: 'message',
        timestamp: new Date().toISOString(),
        channelId: 'directline',
        conversation: { id: msg.conversationId },
        from: bot,
        ...(replyToId ? { replyToId } : {}),
        ...content,
      };
      await this.store.append(key, msg.conversationId, activity, `egress:${msg.id}:${i}`);
    }
  }

  private assertConversation(auth: DirectLineAuth, conversationId: string): void {
    if (auth.kind === 'token' && auth.claims.conversationId !== conversationId) {
      throw new ProviderAuthError('webchat', 'token is not valid for this conversation', 403, 'Forbidden');
    }
  }

  private async requireConversation(resolved: ResolvedChannel, conversationId: string): Promise<void> {
    if (!(await this.store.exists(channelKey(resolved), conversationId))) {
      throw new GreenticError('ConversationNotFound', `conversation '${conversationId}' not found`, 404);
    }
  }

  private async issue(
    resolved: ResolvedChannel,
    conversationId: string,
    userId: string | undefined,
  ): Promise<ConversationInfo> {
    const ttl = tokenTtl(resolved);
    const token = await this.tokens.sign(
      await this.secret(resolved),
      audience(resolved),
      { conversationId, scope: 'conversation', ...(userId ? { userId } : {}) },
      ttl,
    );
    return { conversationId, token, expires_in: ttl };
  }

  private async streamUrl(
    resolved: ResolvedChannel,
    streamBase: string,
    conversationId: string,
    watermark?: number,
  ): Promise<string> {
    const t = await this.tokens.sign(
      await this.secret(resolved),
      audience(resolved),
      { conversationId, scope: 'stream' },
      STREAM_TOKEN_TTL_S,
    );
    const q = new URLSearchParams({
      t,
      ...(watermark !== undefined ? { watermark: String(watermark) } : {}),
    });
    return `${streamBase}/conversations/${encodeURIComponent(conversationId)}/stream?${q.toString()}`;
  }

  private secret(resolved: ResolvedChannel): Promise<string> {
    return channelSecret(this.secrets, resolved, 'directline_secret');
  }
}

export function channelKey(resolved: ResolvedChannel): string {
  return `${tenantKey(resolved.tenant)}/${resolved.channel.id}`;
}

/** Tokens name the channel they belong to, so no token crosses channels or tenants. */
function audience(resolved: ResolvedChannel): string {
  const t = resolved.tenant;
  return `webchat:${t.tenantId}/${t.envId}/${t.teamId ?? 'default'}/${resolved.channel.id}`;
}

function tokenTtl(resolved: ResolvedChannel): number {
  const v = Number(resolved.channel.settings['token_ttl_seconds']);
  return Number.isInteger(v) && v > 0 ? v : DEFAULT_TOKEN_TTL_S;
}

function userOf(body: unknown): string | undefined {
  const user = isRecord(body) && isRecord(body['user']) ? str(body['user']['id']) : undefined;
  if (user !== undefined && (user.length === 0 || user.length > ID_MAX))
    throw new BadRequestError('user.id must be 1 to 256 characters', { code: 'BadArgument' });
  return user;
}

export function parseWatermark(w: string | undefined): number | undefined {
  if (w === undefined || w === '') return undefined;
  if (!/^\d{1,15}$/.test(w)) throw new BadRequestError('watermark must be a number', { code: 'BadArgument' });
  return Number(w);
}

/** A reply as Direct Line activity content: text, suggested actions for choices, hero or Adaptive cards. */
export function toDirectLineContent(reply: OutboundReply): Partial<Activity> | undefined {
  const out: Partial<Activity> = {};
  if (reply.text) out.text = reply.text;
  if (reply.card) {
    if (isAdaptiveCard(reply.card)) {
      out.attachments = [
        { contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: asAdaptiveCardContent(reply.card) },
      ];
    } else {
      const c = normalizeCard(reply.card);
      out.attachments = [
        {
          contentType: 'application/vnd.microsoft.card.hero',
          content: {
            ...(c.title ? { title: c.title } : {}),
            ...(c.subtitle ? { subtitle: c.subtitle } : {}),
            ...(c.text ? { text: c.text } : {}),
            ...(c.imageUrl ? { images: [{ url: c.imageUrl }] } : {}),
            buttons: c.buttons.map((b) =>
              b.url
                ? { type: 'openUrl', title: b.title, value: b.url }
                : { type: 'imBack', title: b.title, value: b.value },
            ),
          },
        },
      ];
    }
  }
  if (reply.choices?.length)
    out.suggestedActions = { actions: reply.choices.map((c) => ({ type: 'imBack', title: c, value: c })) };
  return Object.keys(out).length > 0 ? out : undefined;
}
