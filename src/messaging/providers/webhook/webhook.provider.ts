import { randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { parseBoundedJson } from '../../../common/bounded-json.js';
import { BadRequestError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import type { ChannelBinding } from '../../../tenancy/bundle.types.js';
import type { EgressMessage, OutboundReply } from '../../../core/message-envelope.js';
import { ADAPTIVE_CARD_CONTENT_TYPE, adaptiveCardText, isAdaptiveCard } from '../adaptive-card-text.js';
import { isLocaleTag } from '../locale-tag.js';
import { httpEgressError, networkEgressError } from '../provider-support.js';
import type { ReplyDelivery } from '../../reply-delivery.js';
import {
  GreenticProvider,
  type InboundMessage,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
  type ProviderResponse,
} from '../messaging-provider.js';

const MAX_ID = 256;
const MAX_TEXT = 64 * 1024;

function field(
  body: Record<string, unknown>,
  name: string,
  required: boolean,
  max: number,
): string | undefined {
  const v = body[name];
  if (v === undefined || v === null) {
    if (required) throw new BadRequestError(`field '${name}' is required (string)`, { field: name });
    return undefined;
  }
  if (typeof v !== 'string') throw new BadRequestError(`field '${name}' must be a string`, { field: name });
  if (required && name !== 'text' && v.length === 0)
    throw new BadRequestError(`field '${name}' must not be empty`, { field: name });
  if (v.length > max)
    throw new BadRequestError(`field '${name}' is longer than ${max} characters`, { field: name });
  return v;
}

/** `locale`: optional, a BCP-47-ish tag (`en`, `de-CH`); anything else is refused. */
function localeField(body: Record<string, unknown>): string | undefined {
  const v = body['locale'];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !isLocaleTag(v))
    throw new BadRequestError(`field 'locale' must be a language tag such as 'en' or 'de-CH'`, {
      field: 'locale',
    });
  return v;
}

/** `action`: optional, an object (a card's Action.Submit data sent back). */
function actionField(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const v = body['action'];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw new BadRequestError(`field 'action' must be an object`, { field: 'action' });
  return v as Record<string, unknown>;
}

/**
 * A reply as the webhook answers it: an Adaptive Card also as an `attachments` entry
 * (`application/vnd.microsoft.card.adaptive`), with `text` its readable fallback when the flow gave none.
 */
export function webhookReply(reply: OutboundReply): Record<string, unknown> {
  if (!isAdaptiveCard(reply.card)) return reply as Record<string, unknown>;
  const text = reply.text || adaptiveCardText(reply.card);
  return {
    ...reply,
    ...(text ? { text } : {}),
    attachments: [{ contentType: ADAPTIVE_CARD_CONTENT_TYPE, content: reply.card }],
  };
}

/**
 * The generic webhook channel: `{ userId, text, conversationId?, messageId?, locale?, action? }` in
 * (`text` may be left out when `action` carries a card's Submit data), `{ replies, sessionKey }`
 * out when the caller waits.
 */
@Injectable()
@GreenticProvider('webhook')
export class WebhookProvider implements MessagingProvider {
  readonly id = 'webhook';

  ingress(req: ProviderRequest, resolved: ResolvedChannel): IngressResult {
    let body: unknown;
    try {
      body = parseBoundedJson(req.rawBody.toString('utf8'), resolved.tenantBinding.limits);
    } catch (e) {
      if (!(e instanceof SyntaxError)) throw e;
      throw new BadRequestError(`malformed JSON body: ${e.message}`);
    }
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new BadRequestError('body must be a JSON object');
    const b = body as Record<string, unknown>;
    const userId = field(b, 'userId', true, MAX_ID)!;
    const action = actionField(b);
    const text = field(b, 'text', action === undefined, MAX_TEXT) ?? '';
    const locale = localeField(b);
    const conversationId = field(b, 'conversationId', false, MAX_ID) ?? userId;
    const messageId = field(b, 'messageId', false, MAX_ID) ?? randomUUID();
    const prefer = req.headers['prefer'];
    const wait =
      req.query['wait'] === 'true' ||
      req.query['wait'] === '1' ||
      (typeof prefer === 'string' && /\bwait\b/i.test(prefer));
    const message: InboundMessage = { id: messageId, userId, conversationId, text, raw: b };
    if (action) message.action = action;
    if (locale) message.locale = locale;
    return { messages: [message], wait };
  }

  syncResponse(replies: EgressMessage[], messages: InboundMessage[]): ProviderResponse {
    const r = replies[0];
    const body: Record<string, unknown> = {
      messageId: messages[0]?.id,
      sessionKey: r?.sessionKey,
      status: r?.status,
      replies: (replies.length === 1 ? r!.replies : replies.flatMap((x) => x.replies)).map(webhookReply),
    };
    if (r?.error) body['error'] = r.error;
    return { status: 200, body };
  }

  /** Only a channel with a `callback_url` has replies to post; the others answer waiting callers only. */
  sends(channel: ChannelBinding): boolean {
    const url = channel.settings['callback_url'];
    return typeof url === 'string' && url.length > 0;
  }

  /**
   * Posts the replies to the channel's `callback_url` setting, when it has one (callers that
   * wait get them in the webhook response instead): all replies of a message in one callback,
   * whose `idempotency-key` header is the same on every attempt and every replica.
   */

  async send(msg: EgressMessage, channel: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const url = channel.channel.settings['callback_url'];
    if (typeof url !== 'string' || url.length === 0) return;
    await delivery.whole(async (key) => {
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify({
            messageId: msg.inReplyTo,
            sessionKey: msg.sessionKey,
            conversationId: msg.conversationId,
            userId: msg.userId,
            status: msg.status,
            replies: msg.replies.map(webhookReply),
          }),
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError('webhook', 'callback', e);
      }
      if (!res.ok) throw httpEgressError('webhook', 'callback', res);
    });
  }
}
