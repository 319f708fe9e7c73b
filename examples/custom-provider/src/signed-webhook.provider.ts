import { Injectable, Logger } from '@nestjs/common';
// In a published package this is `from 'greentic-runner/providers'`; inside the repository it is the same file by path.
import {
  BadRequestError,
  channelSecret,
  GreenticProvider,
  header,
  hexSignatureMatches,
  hmacSha256,
  httpEgressError,
  networkEgressError,
  parseJsonObject,
  ProviderAuthError,
  replyText,
  requireSetting,
  SecretsService,
  str,
  type EgressMessage,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
  type ReplyDelivery,
  type ResolvedChannel,
} from '../../../src/messaging/providers/index.js';

/** Requests older (or newer) than this are replays, not messages. */
export const MAX_SKEW_S = 300;

/** `sha256=` + hex HMAC-SHA256 of `{timestamp}.{body}`: the scheme both directions use. */
export function sign(secret: string, timestamp: string, body: string | Buffer): string {
  return 'sha256=' + hmacSha256(secret, timestamp, '.', body).toString('hex');
}

/**
 * A generic signed JSON webhook. In: `POST { id, user, text, conversation? }` with
 * `X-Signature-Timestamp` and `X-Signature` (see `sign`). Out: the flow's replies POSTed to the
 * channel's `callback_url`, signed the same way, so the receiver can trust them too.
 *
 * Bundle: `provider: signed-webhook`, `settings.callback_url`, `secret_refs.signing_secret`.
 */
@Injectable()
@GreenticProvider('signed-webhook')
export class SignedWebhookProvider implements MessagingProvider {
  readonly id = 'signed-webhook';
  private readonly logger = new Logger(SignedWebhookProvider.name);

  constructor(private readonly secrets: SecretsService) {}

  async ingress(req: ProviderRequest, channel: ResolvedChannel): Promise<IngressResult> {
    const ts = header(req, 'x-signature-timestamp');
    const sig = header(req, 'x-signature');
    if (!ts || !sig || !/^\d{1,12}$/.test(ts))
      throw new ProviderAuthError(this.id, 'missing or malformed X-Signature / X-Signature-Timestamp');
    if (Math.abs(Date.now() / 1000 - Number(ts)) > MAX_SKEW_S)
      throw new ProviderAuthError(this.id, 'stale timestamp');
    const secret = await channelSecret(this.secrets, channel, 'signing_secret');
    if (!hexSignatureMatches(hmacSha256(secret, ts, '.', req.rawBody), sig, 'sha256='))
      throw new ProviderAuthError(this.id, 'signature mismatch');

    const body = parseJsonObject(req.rawBody, this.id, channel.tenantBinding.limits);
    const id = str(body['id']);
    const user = str(body['user']);
    const text = str(body['text']);
    if (!id || !user || text === undefined)
      throw new BadRequestError(`${this.id}: 'id', 'user' and 'text' are required strings`);
    // The message id is the idempotency key: a sender that retries with the same id is answered once.
    return {
      messages: [{ id, userId: user, conversationId: str(body['conversation']) ?? user, text, raw: body }],
      response: { status: 202 },
    };
  }

  async send(msg: EgressMessage, channel: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const url = requireSetting(channel, 'callback_url');
    const secret = await channelSecret(this.secrets, channel, 'signing_secret');
    // One call per reply; the runner records each, so a redelivery skips replies already sent,
    // and `key` (the same on every attempt) lets the receiver drop a repeat after a crash.
    await delivery.replies(async (reply, index, key) => {
      const body = JSON.stringify({
        id: `${msg.id}:${index}`,
        inReplyTo: msg.inReplyTo,
        conversation: msg.conversationId,
        user: msg.userId,
        text: replyText(reply),
        ...(reply.choices ? { choices: reply.choices } : {}),
        ...(reply.card ? { card: reply.card } : {}),
      });
      const ts = String(Math.floor(Date.now() / 1000));
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'idempotency-key': key,
            'x-signature-timestamp': ts,
            'x-signature': sign(secret, ts, body),
          },
          body,
          signal: AbortSignal.timeout(10_000),
        });
      } catch (e) {
        throw networkEgressError(this.id, 'callback', e);
      }
      if (!res.ok) throw httpEgressError(this.id, 'callback', res);
      this.logger.debug({ tenant: msg.tenant, channel: msg.channel, reply: index }, 'reply delivered');
    });
  }
}
