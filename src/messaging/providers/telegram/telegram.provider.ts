import { Injectable, Logger } from '@nestjs/common';
import { BadRequestError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import type { EgressMessage, OutboundReply } from '../../message-envelope.js';
import {
  EgressError,
  GreenticProvider,
  ProviderAuthError,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging-provider.js';
import {
  baseUrl,
  channelSecret,
  DeliveryProgress,
  header,
  isRecord,
  networkEgressError,
  normalizeCard,
  parseJsonObject,
  parseRetryAfter,
  safeEqual,
  str,
} from '../provider-support.js';

const TELEGRAM_API = 'https://api.telegram.org';
const TEXT_MAX = 4096;
/** Telegram's limit on `callback_data`, in bytes. */
const CALLBACK_DATA_MAX = 64;

interface InlineButton {
  text: string;
  callback_data?: string;
  url?: string;
}

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
  private readonly progress = new DeliveryProgress();

  constructor(private readonly secrets: SecretsService) {}

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
      const text = buttonText(cqMessage, data) ?? data;
      return {
        messages: [
          {
            id,
            conversationId: String(chatId),
            userId: String(from['id']),
            text,
            action: { type: 'callback_query', data },
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

  async send(msg: EgressMessage, resolved: ResolvedChannel): Promise<void> {
    const token = await channelSecret(this.secrets, resolved, 'bot_token');
    const url = `${baseUrl(resolved, 'api_base_url', TELEGRAM_API)}/bot${token}/sendMessage`;
    const chatId = msg.meta?.['chat_id'] ?? msg.conversationId;
    await this.progress.deliver(msg, async (reply) => {
      const body = toSendMessage(chatId, reply);
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
      if (isRecord(b) && b['callback_data'] === data) return data.startsWith('#') ? str(b['text']) : data;
  }
  return undefined;
}

function callbackData(value: string, index: number): string {
  return Buffer.byteLength(value) <= CALLBACK_DATA_MAX && !value.startsWith('#') ? value : `#${index}`;
}

export function toSendMessage(chatId: unknown, reply: OutboundReply): Record<string, unknown> | undefined {
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
    for (const b of c.buttons)
      buttons.push(b.url ? { text: b.title, url: b.url } : { text: b.title, callback_data: b.value });
  }
  for (const choice of reply.choices ?? []) buttons.push({ text: choice, callback_data: choice });
  if (!text && buttons.length === 0) return undefined;
  if (!text) text = '…';
  if (text.length > TEXT_MAX) text = text.slice(0, TEXT_MAX - 1) + '…';
  const keyboard = buttons.map((b, i) => [
    b.callback_data !== undefined ? { text: b.text, callback_data: callbackData(b.callback_data, i) } : b,
  ]);
  return {
    chat_id: chatId,
    text,
    ...(html ? { parse_mode: 'HTML' } : {}),
    ...(keyboard.length > 0 ? { reply_markup: { inline_keyboard: keyboard } } : {}),
  };
}
