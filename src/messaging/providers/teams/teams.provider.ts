import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { BadRequestError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { tenantKey } from '../../../core/tenant-ctx.js';
import type { EgressMessage, OutboundReply } from '../../../core/message-envelope.js';
import {
  EgressError,
  GreenticProvider,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging-provider.js';
import type { ReplyDelivery } from '../../reply-delivery.js';
import {
  channelSecret,
  header,
  httpEgressError,
  isRecord,
  networkEgressError,
  normalizeCard,
  parseJsonObject,
  requireSetting,
  setting,
  str,
} from '../provider-support.js';
import { asAdaptiveCardContent, isAdaptiveCard, submitEcho } from '../adaptive-card-text.js';
import { localeOf } from '../locale-tag.js';
import { BOT_FRAMEWORK_OPENID_METADATA, BotFrameworkAuth } from './bot-framework-auth.js';

const TOKEN_ENDPOINT = 'https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token';
const TOKEN_SCOPE = 'https://api.botframework.com/.default';
/** Refresh the connector token this long before it expires. */
const TOKEN_MARGIN_MS = 5 * 60_000;
const ADAPTIVE_CARD = 'application/vnd.microsoft.card.adaptive';

/** The invoke answer for an Action.Execute: a plain acknowledgement; the flow's replies follow as messages. */
const EXECUTE_ACK = {
  statusCode: 200,
  type: 'application/vnd.microsoft.activity.message',
  value: 'ok',
};

/** An Action.Execute invoke's `value.action`: its data with its verb. */
function executeData(value: unknown): Record<string, unknown> | undefined {
  const action = isRecord(value) && isRecord(value['action']) ? value['action'] : undefined;
  if (!action) return undefined;
  const data = isRecord(action['data']) ? { ...action['data'] } : {};
  const verb = str(action['verb']);
  if (verb && data['verb'] === undefined) data['verb'] = verb;
  return data;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

const trimSlash = (s: string) => s.replace(/\/+$/, '');

/**
 * Microsoft Teams through the Bot Framework: `Activity` payloads whose Bearer JWT is verified
 * against the OpenID metadata / JWKS (BotFrameworkAuth); `conversationUpdate` acknowledged (and
 * logged) without running a flow; replies posted to `{serviceUrl}/v3/conversations/{id}/activities`
 * with a client-credentials token, cards and choices as Adaptive Cards.
 *
 * Egress is plain fetch: botframework-connector's client does take a service URL, but its token
 * endpoint is process-wide static state and it brings the whole botbuilder stack; per-channel
 * endpoints (and test fakes) need neither.
 * Settings: `app_id` (required: the audience), `openid_metadata_url`, `jwt_issuer`, `token_endpoint`,
 * `oauth_scope`. Secrets: `app_password` (client secret).
 */
@Injectable()
@GreenticProvider('teams')
export class TeamsProvider implements MessagingProvider {
  readonly id = 'teams';
  private readonly logger = new Logger(TeamsProvider.name);
  private readonly auth = new BotFrameworkAuth();
  private readonly tokens = new Map<string, Promise<CachedToken>>();

  constructor(private readonly secrets: SecretsService) {}

  async ingress(req: ProviderRequest, resolved: ResolvedChannel): Promise<IngressResult> {
    const appId = requireSetting(resolved, 'app_id');
    // The body is parsed before the token is checked only to learn the channel and serviceUrl the
    // token must vouch for; nothing in it is used unless the token verifies.
    const activity = parseJsonObject(req.rawBody, 'teams', resolved.tenantBinding.limits);
    const serviceUrl = str(activity['serviceUrl']);
    await this.auth.verify(header(req, 'authorization'), {
      metadataUrl: setting(resolved, 'openid_metadata_url') ?? BOT_FRAMEWORK_OPENID_METADATA,
      appId,
      issuer: setting(resolved, 'jwt_issuer'),
      channelId: str(activity['channelId']),
      serviceUrl: serviceUrl ?? '',
    });
    const tenant = resolved.tenant.tenantId;
    const type = str(activity['type']);
    const conversation = isRecord(activity['conversation']) ? activity['conversation'] : undefined;
    const from = isRecord(activity['from']) ? activity['from'] : undefined;
    const recipient = isRecord(activity['recipient']) ? activity['recipient'] : undefined;

    if (type === 'conversationUpdate') {
      const botId = str(recipient?.['id']);
      const ids = (k: string) =>
        (Array.isArray(activity[k]) ? activity[k] : [])
          .map((m) => (isRecord(m) ? str(m['id']) : undefined))
          .filter(Boolean);
      const added = ids('membersAdded');
      const removed = ids('membersRemoved');
      this.logger.log(
        {
          tenant,
          channel: resolved.channel.id,
          conversation: conversation?.['id'],
          added: added.length,
          removed: removed.length,
          botAdded: added.includes(botId),
        },
        'teams conversationUpdate',
      );
      return { messages: [], response: { status: 200 } };
    }
    // An Action.Execute (Universal Actions) arrives as an invoke that expects an answer in the response.
    const execute = type === 'invoke' && activity['name'] === 'adaptiveCard/action';
    if (type !== 'message' && !execute) {
      this.logger.debug({ tenant, type }, 'teams activity type ignored');
      return { messages: [], response: { status: 200 } };
    }
    const id = str(activity['id']);
    const conversationId = str(conversation?.['id']);
    const userId = str(from?.['id']);
    if (!id || !conversationId || !userId || !serviceUrl)
      throw new BadRequestError('teams: message activity without id, conversation.id, from.id or serviceUrl');
    const value = execute
      ? executeData(activity['value'])
      : isRecord(activity['value'])
        ? activity['value']
        : undefined;
    // "<at>Bot</at> hello" in channels → "hello".
    const typed = (str(activity['text']) ?? '').replace(/<at>[^<]*<\/at>/g, '').trim();
    // A card's Action.Submit sends its data (and the inputs) as `value`, usually without text.
    const text = typed || (value ? submitEcho(value) : '');
    const locale = localeOf(activity['locale']);
    return {
      messages: [
        {
          id,
          conversationId,
          userId,
          text,
          ...(value ? { action: { type: 'card_submit', ...value } } : {}),
          ...(locale ? { locale } : {}),
          ...(str(activity['timestamp']) ? { timestamp: str(activity['timestamp']) } : {}),
          raw: activity,
          meta: {
            serviceUrl,
            activityId: id,
            ...(recipient ? { bot: { id: recipient['id'], name: recipient['name'] } } : {}),
            user: { id: userId, name: from?.['name'] },
          },
        },
      ],
      response: execute ? { status: 200, body: EXECUTE_ACK } : { status: 200 },
    };
  }

  async send(msg: EgressMessage, resolved: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const serviceUrl = str(msg.meta?.['serviceUrl']) ?? requireSetting(resolved, 'service_url');
    const url = `${trimSlash(serviceUrl)}/v3/conversations/${encodeURIComponent(msg.conversationId)}/activities`;
    const bot = isRecord(msg.meta?.['bot']) ? msg.meta['bot'] : { id: requireSetting(resolved, 'app_id') };
    const user = isRecord(msg.meta?.['user']) ? msg.meta['user'] : { id: msg.userId };
    const replyToId = str(msg.meta?.['activityId']);
    // Fetched before any call to the connector: a token endpoint that does not answer sends nothing,
    // which at_most_once must not mistake for a call that may have gone out.
    const { token, key } = await this.token(resolved);
    // The connector de-duplicates nothing a bot sends (it assigns the activity id itself), so
    // a reply resent after a crash shows twice; replyToId only threads it under the user's message.
    await delivery.replies(async (reply) => {
      const content = toTeamsActivity(reply);
      if (!content) return;
      const activity = {
        type: 'message',
        from: bot,
        recipient: user,
        conversation: { id: msg.conversationId },
        ...(replyToId ? { replyToId } : {}),
        ...content,
      };
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(activity),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError('teams', 'send activity', e);
      }
      if (res.ok) return;
      if (res.status === 401) {
        // A token revoked early: fetch a fresh one on the retry.
        this.tokens.delete(key);
        throw new EgressError('teams', 'connector answered 401', true, undefined, 401);
      }
      throw httpEgressError('teams', 'connector', res, await res.text().catch(() => ''));
    });
  }

  /**
   * Client-credentials token for the connector, cached per channel and secret (a rotated secret
   * gets a new token) until five minutes before it expires; concurrent sends share one fetch.
   */
  private async token(resolved: ResolvedChannel): Promise<{ token: string; key: string }> {
    const secret = await channelSecret(this.secrets, resolved, 'app_password');
    const key = `${tenantKey(resolved.tenant)}/${resolved.channel.id}|${createHash('sha256').update(secret).digest('hex')}`;
    const cached = this.tokens.get(key);
    if (cached) {
      const t = await cached.catch(() => undefined);
      if (t && t.expiresAt > Date.now()) return { token: t.token, key };
      this.tokens.delete(key);
    }
    const p = this.fetchToken(resolved, secret);
    this.tokens.set(key, p);
    p.catch(() => this.tokens.delete(key));
    return { token: (await p).token, key };
  }

  private async fetchToken(resolved: ResolvedChannel, secret: string): Promise<CachedToken> {
    const endpoint = setting(resolved, 'token_endpoint') ?? TOKEN_ENDPOINT;
    let res: Response;
    try {
      res = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: requireSetting(resolved, 'app_id'),
          client_secret: secret,
          scope: setting(resolved, 'oauth_scope') ?? TOKEN_SCOPE,
        }).toString(),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      throw networkEgressError('teams', 'token endpoint', e);
    }
    if (!res.ok) throw httpEgressError('teams', 'token endpoint', res, await res.text().catch(() => ''));
    const body = (await res.json()) as { access_token?: string; expires_in?: number };
    if (!body.access_token)
      throw new EgressError('teams', 'token endpoint answered without access_token', true);
    return {
      token: body.access_token,
      expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000 - TOKEN_MARGIN_MS,
    };
  }
}

/** A reply as Bot Framework activity content: text, or an Adaptive Card for cards and choices. */
export function toTeamsActivity(reply: OutboundReply): Record<string, unknown> | undefined {
  if (isAdaptiveCard(reply.card)) {
    return {
      ...(reply.text ? { text: reply.text } : {}),
      attachments: [{ contentType: ADAPTIVE_CARD, content: asAdaptiveCardContent(reply.card) }],
    };
  }
  if (!reply.card && !reply.choices?.length)
    return reply.text ? { text: reply.text, textFormat: 'plain' } : undefined;
  const c = reply.card
    ? normalizeCard(reply.card)
    : { buttons: [] as { title: string; value: string; url?: string }[] };
  const body: Record<string, unknown>[] = [];
  if ('title' in c && c.title)
    body.push({ type: 'TextBlock', text: c.title, size: 'Medium', weight: 'Bolder', wrap: true });
  if ('subtitle' in c && c.subtitle)
    body.push({ type: 'TextBlock', text: c.subtitle, isSubtle: true, wrap: true });
  if (reply.text) body.push({ type: 'TextBlock', text: reply.text, wrap: true });
  if ('text' in c && c.text) body.push({ type: 'TextBlock', text: c.text, wrap: true });
  if ('imageUrl' in c && c.imageUrl) body.push({ type: 'Image', url: c.imageUrl, size: 'Stretch' });
  const actions = [
    ...c.buttons.map((b) =>
      b.url
        ? { type: 'Action.OpenUrl', title: b.title, url: b.url }
        : { type: 'Action.Submit', title: b.title, data: { choice: b.value } },
    ),
    ...(reply.choices ?? []).map((choice) => ({ type: 'Action.Submit', title: choice, data: { choice } })),
  ];
  return {
    attachments: [
      {
        contentType: ADAPTIVE_CARD,
        content: {
          type: 'AdaptiveCard',
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          version: '1.4',
          body,
          ...(actions.length > 0 ? { actions } : {}),
        },
      },
    ],
  };
}
