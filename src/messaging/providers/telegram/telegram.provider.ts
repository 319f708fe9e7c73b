import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { BadRequestError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { PROVIDER_STASH, type ProviderStash } from '../../../core/provider-stash.js';
import type { EgressMessage, OutboundReply } from '../../../core/message-envelope.js';
import {
  EgressError,
  GreenticProvider,
  ProviderAuthError,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging-provider.js';
import type { ReplyDelivery } from '../../reply-delivery.js';
import {
  baseUrl,
  channelSecret,
  header,
  isRecord,
  networkEgressError,
  normalizeCard,
  parseJsonObject,
  parseRetryAfter,
  safeEqual,
  str,
} from '../provider-support.js';
import { decodeCardSubmit, encodeCardSubmit, submitEcho } from '../adaptive-card-text.js';
import { localeOf } from '../locale-tag.js';

const TELEGRAM_API = 'https://api.telegram.org';
const TEXT_MAX = 4096;
/** Telegram's limit on `callback_data`, in bytes. */
const CALLBACK_DATA_MAX = 64;
/** Card Submit data too long for `callback_data`, kept here under a short token (`~#token`). */
const STASH_TTL_MS = 7 * 24 * 3_600_000;
const STASH_PREFIX = '~#';

interface InlineButton {
  text: string;
  callback_data?: string;
  url?: string;
  /** `callback_data` is already encoded card data, sent as is. */
  card?: boolean;
}

/** A stashed card's key in its tenant's stash: the channel, the chat and the token, so a token is good only where it was sent. */
const stashKey = (resolved: ResolvedChannel, chatId: unknown, token: string) =>
  `telegram/${resolved.channel.id}/${String(chatId)}/${token}`;

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * Telegram Bot API. Ingress: `Update`s with `message` or `callback_query`, authenticated by the
 * `X-Telegram-Bot-Api-Secret-Token` header (the `secret_token` given to setWebhook). Egress:
 * `sendMessage`, choices and card buttons as an inline keyboard.
 *
 * There is no official Telegram client library for Node (Telegram publishes only the HTTP API),
 * so egress is plain fetch against `{api_base_url}/bot{token}/sendMessage`.
 * Settings: `api_base_url` (default https://api.telegram.org). Secrets: `webhook_secret`, `bot_token`.
 */
@Injectable()
@GreenticProvider('telegram')
export class TelegramProvider implements MessagingProvider {
  readonly id = 'telegram';
  private readonly logger = new Logger(TelegramProvider.name);
  constructor(
    private readonly secrets: SecretsService,
    /**
     * Submit data of card buttons that did not fit in 64 bytes, for a week, by channel, chat and
     * token: in Redis with GREENTIC_SESSIONS=redis, so a tap that reaches another replica, or
     * comes after a restart, finds it.
     */
    @Inject(PROVIDER_STASH) private readonly stash: ProviderStash,
  ) {}

  async ingress(req: ProviderRequest, resolved: ResolvedChannel): Promise<IngressResult> {
    const expected = await channelSecret(this.secrets, resolved, 'webhook_secret');
    const got = header(req, 'x-telegram-bot-api-secret-token');
    if (!got) throw new ProviderAuthError('telegram', 'missing X-Telegram-Bot-Api-Secret-Token header');
    if (!safeEqual(got, expected)) throw new ProviderAuthError('telegram', 'secret token mismatch');

    const update = parseJsonObject(req.rawBody, 'telegram', resolved.tenantBinding.limits);
    const updateId = update['update_id'];
    if (typeof updateId !== 'number' || !Number.isInteger(updateId))
      throw new BadRequestError('telegram: Update without integer update_id');
    const tenant = resolved.tenant.tenantId;
    const id = String(updateId);

    const message = update['message'];
    if (isRecord(message)) {
      const from = isRecord(message['from']) ? message['from'] : undefined;
      const chat = isRecord(message['chat']) ? message['chat'] : undefined;
      if (!chat || chat['id'] === undefined) throw new BadRequestError('telegram: message without chat.id');
      if (!from || from['is_bot'] === true) {
        this.logger.debug({ tenant, updateId }, 'telegram message without a human sender ignored');
        return { messages: [], response: { status: 200 } };
      }
      const text = str(message['text']) ?? str(message['caption']) ?? '';
      const date =
        typeof message['date'] === 'number' ? new Date(message['date'] * 1000).toISOString() : undefined;
      return {
        messages: [
          {
            id,
            conversationId: String(chat['id']),
            userId: String(from['id']),
            text,
            ...(localeOf(from['language_code']) ? { locale: localeOf(from['language_code']) } : {}),
            ...(date ? { timestamp: date } : {}),
            raw: update,
            meta: { chat_id: chat['id'], message_id: message['message_id'] },
          },
        ],
        response: { status: 200 },
      };
    }

    const cq = update['callback_query'];
    if (isRecord(cq)) {
      const from = isRecord(cq['from']) ? cq['from'] : undefined;
      const cqId = str(cq['id']);
      if (!from || !cqId) throw new BadRequestError('telegram: callback_query without id or from');
      const cqMessage = isRecord(cq['message']) ? cq['message'] : undefined;
      const chat = cqMessage && isRecord(cqMessage['chat']) ? cqMessage['chat'] : undefined;
      const chatId = chat?.['id'] ?? from['id'];
      const data = str(cq['data']) ?? '';
      const label = buttonText(cqMessage, data);
      const submitted = await this.cardSubmitOf(resolved, chatId, data);
      if (!submitted && data.startsWith(STASH_PREFIX))
        this.logger.warn(
          { tenant, channel: resolved.channel.id, updateId, durable: this.stash.durable },
          this.stash.durable
            ? 'telegram card button data expired (older than a week): its label is sent instead'
            : 'telegram card button data not held in this process (a restart, or another replica: set GREENTIC_SESSIONS=redis): its label is sent instead',
        );
      const locale = localeOf(from['language_code']);
      return {
        messages: [
          {
            id,
            conversationId: String(chatId),
            userId: String(from['id']),
            text: label ?? (submitted ? submitEcho(submitted) : data),
            action: submitted ? { type: 'card_submit', ...submitted } : { type: 'callback_query', data },
            ...(locale ? { locale } : {}),
            raw: update,
            meta: { chat_id: chatId },
          },
        ],
        // Answering the webhook with a method call stops the client's spinner without another request.
        response: { status: 200, body: { method: 'answerCallbackQuery', callback_query_id: cqId } },
      };
    }

    this.logger.debug(
      { tenant, updateId, kinds: Object.keys(update).filter((k) => k !== 'update_id') },
      'telegram update kind ignored',
    );
    return { messages: [], response: { status: 200 } };
  }

  /** The card Submit data a callback carries: inline (`~?…`, `~{…}`) or stashed at send (`~#token`). */
  private async cardSubmitOf(
    resolved: ResolvedChannel,
    chatId: unknown,
    data: string,
  ): Promise<Record<string, unknown> | undefined> {
    if (!data.startsWith(STASH_PREFIX)) return decodeCardSubmit(data);
    return this.stash.get(resolved.tenant, stashKey(resolved, chatId, data.slice(STASH_PREFIX.length)));
  }

  async send(msg: EgressMessage, resolved: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const token = await channelSecret(this.secrets, resolved, 'bot_token');
    const url = `${baseUrl(resolved, 'api_base_url', TELEGRAM_API)}/bot${token}/sendMessage`;
    const chatId = msg.meta?.['chat_id'] ?? msg.conversationId;
    // Tokens are made while the message is built, and their data stored before it is sent.
    const stashed: Promise<void>[] = [];
    const stash = (data: Record<string, unknown>) => {
      const token = randomBytes(9).toString('base64url');
      stashed.push(this.stash.put(resolved.tenant, stashKey(resolved, chatId, token), data, STASH_TTL_MS));
      return STASH_PREFIX + token;
    };
    // The Bot API has no idempotency key: a reply resent after a crash shows twice in the chat.
    await delivery.replies(async (reply) => {
      const body = toSendMessage(chatId, reply, stash);
      await Promise.all(stashed.splice(0));
      if (!body) return;
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError('telegram', 'sendMessage', e);
      }
      if (res.ok) return;
      const err = (await res.json().catch(() => ({}))) as {
        description?: string;
        parameters?: { retry_after?: number };
      };
      const retryAfterS = err.parameters?.retry_after;
      const retryAfterMs =
        typeof retryAfterS === 'number'
          ? retryAfterS * 1000
          : parseRetryAfter(res.headers.get('retry-after'));
      throw new EgressError(
        'telegram',
        `sendMessage answered ${res.status}${err.description ? `: ${err.description}` : ''}`,
        res.status === 429 || res.status >= 500,
        retryAfterMs,
        res.status,
      );
    });
  }
}

/** The label of the clicked button, found in the message that carried the keyboard. */
function buttonText(message: Record<string, unknown> | undefined, data: string): string | undefined {
  const markup = message && isRecord(message['reply_markup']) ? message['reply_markup'] : undefined;
  const rows = markup && Array.isArray(markup['inline_keyboard']) ? markup['inline_keyboard'] : [];
  for (const row of rows) {
    if (!Array.isArray(row)) continue;
    for (const b of row)
      if (isRecord(b) && b['callback_data'] === data) return /^[#~]/.test(data) ? str(b['text']) : data;
  }
  return undefined;
}

/** A plain value as callback_data: itself when it fits and cannot be mistaken for `#i` or card data. */
function callbackData(value: string, index: number): string {
  return Buffer.byteLength(value) <= CALLBACK_DATA_MAX && !/^[#~]/.test(value) ? value : `#${index}`;
}

/**
 * A reply as sendMessage arguments. A card button's Submit data goes in `callback_data` compactly
 * when it fits in 64 bytes (`~?k=v`, `~{json}`), else `stash` keeps it under a short token.
 */
export function toSendMessage(
  chatId: unknown,
  reply: OutboundReply,
  stash?: (data: Record<string, unknown>) => string,
): Record<string, unknown> | undefined {
  const buttons: InlineButton[] = [];
  let text = reply.text ?? '';
  let html = false;
  if (reply.card) {
    const c = normalizeCard(reply.card);
    html = true;
    text = [
      c.title ? `<b>${escapeHtml(c.title)}</b>` : undefined,
      c.subtitle ? `<i>${escapeHtml(c.subtitle)}</i>` : undefined,
      reply.text ? escapeHtml(reply.text) : undefined,
      c.text ? escapeHtml(c.text) : undefined,
      c.imageUrl ? escapeHtml(c.imageUrl) : undefined,
    ]
      .filter(Boolean)
      .join('\n');
    for (const b of c.buttons) {
      if (b.url) buttons.push({ text: b.title, url: b.url });
      else if (b.data) {
        const encoded = encodeCardSubmit(b.data, CALLBACK_DATA_MAX) ?? stash?.(b.data);
        buttons.push({ text: b.title, callback_data: encoded ?? b.value, card: encoded !== undefined });
      } else buttons.push({ text: b.title, callback_data: b.value });
    }
  }
  for (const choice of reply.choices ?? []) buttons.push({ text: choice, callback_data: choice });
  if (!text && buttons.length === 0) return undefined;
  if (!text) text = '…';
  if (text.length > TEXT_MAX) text = text.slice(0, TEXT_MAX - 1) + '…';
  const keyboard = buttons.map((b, i) => [
    b.callback_data === undefined
      ? { text: b.text, url: b.url }
      : { text: b.text, callback_data: b.card ? b.callback_data : callbackData(b.callback_data, i) },
  ]);
  return {
    chat_id: chatId,
    text,
    ...(html ? { parse_mode: 'HTML' } : {}),
    ...(keyboard.length > 0 ? { reply_markup: { inline_keyboard: keyboard } } : {}),
  };
}
