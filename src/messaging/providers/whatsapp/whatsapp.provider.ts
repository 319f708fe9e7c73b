import { Injectable, Logger } from '@nestjs/common';
import { BadRequestError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import type { EgressMessage, OutboundReply } from '../../../core/message-envelope.js';
import {
  EgressError,
  GreenticProvider,
  ProviderAuthError,
  type InboundMessage,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
  type ProviderResponse,
} from '../messaging-provider.js';
import type { ReplyDelivery } from '../../reply-delivery.js';
import {
  baseUrl,
  channelSecret,
  header,
  hexSignatureMatches,
  hmacSha256,
  isRecord,
  networkEgressError,
  normalizeCard,
  parseJsonObject,
  parseRetryAfter,
  requireSetting,
  safeEqual,
  setting,
  str,
} from '../provider-support.js';
import { decodeCardSubmit, encodeCardSubmit, submitEcho } from '../adaptive-card-text.js';

const GRAPH_API = 'https://graph.facebook.com';
const GRAPH_VERSION = 'v21.0';
/** Interactive message limits (Cloud API reference): 3 reply buttons of 20 chars; 10 list rows of 24. */
const BUTTONS_MAX = 3;
const BUTTON_TITLE_MAX = 20;
const ROWS_MAX = 10;
const ROW_TITLE_MAX = 24;
const BODY_MAX = 1024;
const TEXT_MAX = 4096;
const HEADER_MAX = 60;
const BUTTON_ID_MAX = 256;
const ROW_ID_MAX = 200;
/** Graph error codes that mean "later", not "never": throttling and transient service errors. */
const RETRYABLE_GRAPH_CODES = new Set([1, 2, 4, 17, 341, 80007, 130429, 131000, 131048, 131056]);

const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);

function queryParam(query: Record<string, unknown>, name: string): string | undefined {
  const flat = query[`hub.${name}`];
  if (typeof flat === 'string') return flat;
  // An extended query parser turns `hub.mode` into `{ hub: { mode } }`.
  const hub = query['hub'];
  return isRecord(hub) ? str(hub[name]) : undefined;
}

/**
 * WhatsApp Cloud API. `GET` answers the webhook verification (`hub.mode=subscribe`,
 * `hub.verify_token`, `hub.challenge`); `POST` carries `entry[].changes[].value` with `messages`
 * and `statuses`, signed by `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, app secret).
 * Egress: `POST /{version}/{phone-number-id}/messages`: text, reply buttons (≤ 3 choices) or a list.
 *
 * Meta's own Node SDK for the Cloud API is archived and takes no base URL, so egress is plain fetch.
 * Settings: `api_base_url` (default https://graph.facebook.com), `api_version` (v21.0),
 * `phone_number_id` (else the one the message arrived on). Secrets: `verify_token`, `app_secret`, `access_token`.
 */
@Injectable()
@GreenticProvider('whatsapp')
export class WhatsAppProvider implements MessagingProvider {
  readonly id = 'whatsapp';
  private readonly logger = new Logger(WhatsAppProvider.name);

  constructor(private readonly secrets: SecretsService) {}

  async challenge(req: ProviderRequest, resolved: ResolvedChannel): Promise<ProviderResponse> {
    const mode = queryParam(req.query, 'mode');
    const token = queryParam(req.query, 'verify_token');
    const challenge = queryParam(req.query, 'challenge');
    if (mode !== 'subscribe' || !challenge)
      throw new BadRequestError('whatsapp: verification needs hub.mode=subscribe and hub.challenge');
    const expected = await channelSecret(this.secrets, resolved, 'verify_token');
    if (!token || !safeEqual(token, expected))
      throw new ProviderAuthError('whatsapp', 'hub.verify_token mismatch', 403);
    return { status: 200, headers: { 'content-type': 'text/plain' }, body: challenge };
  }

  async ingress(req: ProviderRequest, resolved: ResolvedChannel): Promise<IngressResult> {
    const sig = header(req, 'x-hub-signature-256');
    if (!sig) throw new ProviderAuthError('whatsapp', 'missing X-Hub-Signature-256 header');
    const secret = await channelSecret(this.secrets, resolved, 'app_secret');
    if (!hexSignatureMatches(hmacSha256(secret, req.rawBody), sig, 'sha256=')) {
      throw new ProviderAuthError('whatsapp', 'signature mismatch');
    }
    const body = parseJsonObject(req.rawBody, 'whatsapp', resolved.tenantBinding.limits);
    if (!Array.isArray(body['entry'])) throw new BadRequestError('whatsapp: notification without entry[]');
    const tenant = resolved.tenant.tenantId;
    const messages: InboundMessage[] = [];
    for (const entry of body['entry']) {
      if (!isRecord(entry) || !Array.isArray(entry['changes'])) continue;
      for (const change of entry['changes']) {
        if (!isRecord(change) || change['field'] !== 'messages' || !isRecord(change['value'])) continue;
        const value = change['value'];
        const metadata = isRecord(value['metadata']) ? value['metadata'] : {};
        const phoneNumberId = str(metadata['phone_number_id']);
        for (const s of Array.isArray(value['statuses']) ? value['statuses'] : []) {
          if (!isRecord(s)) continue;
          const status = {
            tenant,
            channel: resolved.channel.id,
            messageId: s['id'],
            status: s['status'],
            errors: s['errors'],
          };
          if (s['status'] === 'failed') this.logger.warn(status, 'whatsapp delivery failed');
          else this.logger.debug(status, 'whatsapp status');
        }
        for (const m of Array.isArray(value['messages']) ? value['messages'] : []) {
          if (!isRecord(m)) continue;
          const parsed = parseMessage(m);
          const from = str(m['from']);
          const id = str(m['id']);
          if (!from || !id) throw new BadRequestError('whatsapp: message without from or id');
          if (!parsed) {
            this.logger.debug({ tenant, messageId: id, type: m['type'] }, 'whatsapp message type ignored');
            continue;
          }
          const ts = Number(m['timestamp']);
          messages.push({
            id,
            conversationId: from,
            userId: from,
            text: parsed.text,
            ...(parsed.action ? { action: parsed.action } : {}),
            ...(Number.isFinite(ts) && ts > 0 ? { timestamp: new Date(ts * 1000).toISOString() } : {}),
            raw: m,
            meta: { ...(phoneNumberId ? { phone_number_id: phoneNumberId } : {}) },
          });
        }
      }
    }
    return { messages, response: { status: 200 } };
  }

  async send(msg: EgressMessage, resolved: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const token = await channelSecret(this.secrets, resolved, 'access_token');
    const phoneNumberId =
      setting(resolved, 'phone_number_id') ??
      str(msg.meta?.['phone_number_id']) ??
      requireSetting(resolved, 'phone_number_id');
    const url = `${baseUrl(resolved, 'api_base_url', GRAPH_API)}/${setting(resolved, 'api_version') ?? GRAPH_VERSION}/${encodeURIComponent(phoneNumberId)}/messages`;
    await delivery.replies(async (reply, _index, key) => {
      const message = toWhatsAppMessage(msg.userId, reply);
      if (!message) return;
      // The Cloud API does not de-duplicate; it echoes biz_opaque_callback_data in the message's
      // status webhooks, so a repeat is recognisable there by its key.
      const body = { ...message, biz_opaque_callback_data: key };
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError('whatsapp', 'messages', e);
      }
      if (res.ok) return;
      const err = (await res.json().catch(() => ({}))) as { error?: { message?: string; code?: number } };
      const code = err.error?.code;
      throw new EgressError(
        'whatsapp',
        `messages answered ${res.status}${err.error?.message ? `: ${err.error.message}` : ''}${code !== undefined ? ` (code ${code})` : ''}`,
        res.status === 429 || res.status >= 500 || (code !== undefined && RETRYABLE_GRAPH_CODES.has(code)),
        parseRetryAfter(res.headers.get('retry-after')),
        res.status,
      );
    });
  }
}

function parseMessage(
  m: Record<string, unknown>,
): { text: string; action?: Record<string, unknown> } | undefined {
  switch (m['type']) {
    case 'text':
      return { text: isRecord(m['text']) ? (str(m['text']['body']) ?? '') : '' };
    case 'interactive': {
      const i = isRecord(m['interactive']) ? m['interactive'] : {};
      const reply = isRecord(i['button_reply'])
        ? i['button_reply']
        : isRecord(i['list_reply'])
          ? i['list_reply']
          : undefined;
      if (!reply) return undefined;
      const id = str(reply['id']) ?? '';
      const title = str(reply['title']) ?? '';
      // A card button of ours: its id carries the Submit data.
      const submitted = decodeCardSubmit(id);
      if (submitted)
        return { text: title || submitEcho(submitted), action: { type: 'card_submit', ...submitted } };
      return {
        text: id || title,
        action: { type: String(i['type']), id, title: reply['title'] },
      };
    }
    case 'button': {
      const b = isRecord(m['button']) ? m['button'] : {};
      return {
        text: str(b['payload']) ?? str(b['text']) ?? '',
        action: { type: 'button', payload: b['payload'], text: b['text'] },
      };
    }
    case 'image':
    case 'video':
    case 'document': {
      const media = isRecord(m[m['type'] as string])
        ? (m[m['type'] as string] as Record<string, unknown>)
        : {};
      return { text: str(media['caption']) ?? '' };
    }
    default:
      return undefined;
  }
}

/** A reply button or list row id: a card button's Submit data when it fits (else its title), or the choice. */
function optionId(o: { id: string; data?: Record<string, unknown> }, max: number): string {
  const encoded = o.data ? encodeCardSubmit(o.data, max) : undefined;
  return encoded ?? cut(o.id, max);
}

export function toWhatsAppMessage(to: string, reply: OutboundReply): Record<string, unknown> | undefined {
  const base = { messaging_product: 'whatsapp', recipient_type: 'individual', to };
  const card = reply.card ? normalizeCard(reply.card) : undefined;
  const options = [
    ...(card?.buttons
      .filter((b) => !b.url)
      .map((b) => ({ id: b.value, title: b.title, ...(b.data ? { data: b.data } : {}) })) ?? []),
    ...(reply.choices ?? []).map((c) => ({ id: c, title: c })),
  ];
  // No link buttons among reply buttons: links are written out.
  const links = card?.buttons.filter((b) => b.url).map((b) => `${b.title}: ${b.url}`) ?? [];
  const bodyText =
    [reply.text, card?.subtitle, card?.text, ...links].filter(Boolean).join('\n') || card?.title || '';
  if (options.length === 0) {
    const text = [
      card?.title && card.title !== bodyText ? `*${card.title}*` : undefined,
      bodyText,
      card?.imageUrl,
    ]
      .filter(Boolean)
      .join('\n');
    return text
      ? { ...base, type: 'text', text: { preview_url: Boolean(card?.imageUrl), body: cut(text, TEXT_MAX) } }
      : undefined;
  }
  const header = card?.imageUrl
    ? { type: 'image', image: { link: card.imageUrl } }
    : card?.title && card.title !== bodyText
      ? { type: 'text', text: cut(card.title, HEADER_MAX) }
      : undefined;
  const body = { text: cut(bodyText || 'Please choose:', BODY_MAX) };
  if (options.length <= BUTTONS_MAX && options.every((o) => o.title.length <= BUTTON_TITLE_MAX)) {
    return {
      ...base,
      type: 'interactive',
      interactive: {
        type: 'button',
        ...(header ? { header } : {}),
        body,
        action: {
          buttons: options.map((o) => ({
            type: 'reply',
            reply: { id: optionId(o, BUTTON_ID_MAX), title: o.title },
          })),
        },
      },
    };
  }
  return {
    ...base,
    type: 'interactive',
    interactive: {
      type: 'list',
      ...(header && header.type === 'text' ? { header } : {}),
      body,
      action: {
        button: 'Choose',
        sections: [
          {
            title: 'Options',
            rows: options
              .slice(0, ROWS_MAX)
              .map((o) => ({ id: optionId(o, ROW_ID_MAX), title: cut(o.title, ROW_TITLE_MAX) })),
          },
        ],
      },
    },
  };
}
