import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import {
  LogLevel,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebClient,
  type Logger as SlackLogger,
} from '@slack/web-api';
import { DEFAULT_JSON_LIMITS, parseBoundedJson } from '../../../common/bounded-json.js';
import { BadRequestError } from '../../../common/errors.js';
import { SecretsService } from '../../../secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { tenantKey } from '../../../core/tenant-ctx.js';
import type { EgressMessage } from '../../../core/message-envelope.js';
import {
  EgressError,
  GreenticProvider,
  type InboundMessage,
  type IngressResult,
  type MessagingProvider,
  type ProviderRequest,
} from '../messaging-provider.js';
import type { ReplyDelivery } from '../../reply-delivery.js';
import { baseUrl, channelSecret, header, isRecord, parseJsonObject, str } from '../provider-support.js';
import { submitEcho } from '../adaptive-card-text.js';
import { CARD_SUBMIT_ACTION, toSlackMessage } from './slack-blocks.js';
import { verifySlackRequest } from './slack-signature.js';

const SLACK_API = 'https://slack.com/api/';
/** Platform errors that are Slack's trouble, not ours: worth another try. */
const RETRYABLE_PLATFORM_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
  'ratelimited',
]);
/** Message subtypes that are a person writing; everything else (edits, joins, bots) is not for a flow. */
const USER_SUBTYPES = new Set([undefined, 'file_share', 'thread_broadcast']);

const ACK = { status: 200 } as const;

/**
 * Slack: Events API (`event_callback` message / app_mention, `url_verification`) and interactive
 * payloads (`block_actions`), all verified with the signing secret; replies with chat.postMessage
 * through Slack's own `@slack/web-api` client pointed at the channel's `api_base_url`.
 *
 * Settings: `api_base_url` (default https://slack.com/api/), `reply_in_thread` (thread replies
 * under channel messages; messages already in a thread are always answered in it).
 * Secrets (`secret_refs`): `signing_secret`, `bot_token`.
 */
@Injectable()
@GreenticProvider('slack')
export class SlackProvider implements MessagingProvider {
  readonly id = 'slack';
  private readonly logger = new Logger(SlackProvider.name);
  private readonly clients = new Map<string, WebClient>();

  constructor(private readonly secrets: SecretsService) {}

  async ingress(req: ProviderRequest, resolved: ResolvedChannel): Promise<IngressResult> {
    verifySlackRequest(req, await channelSecret(this.secrets, resolved, 'signing_secret'));
    const tenant = resolved.tenant.tenantId;
    const retryNum = header(req, 'x-slack-retry-num');
    if (retryNum) {
      // The envelope id is the event id, so the bus and the session store answer a retry once.
      this.logger.log(
        { tenant, channel: resolved.channel.id, retryNum, reason: header(req, 'x-slack-retry-reason') },
        'slack retry received',
      );
    }
    const contentType = header(req, 'content-type') ?? '';
    if (contentType.startsWith('application/x-www-form-urlencoded')) return this.interactive(req, resolved);
    const body = parseJsonObject(req.rawBody, 'slack', resolved.tenantBinding.limits);
    switch (body['type']) {
      case 'url_verification': {
        const challenge = str(body['challenge']);
        if (!challenge) throw new BadRequestError('slack: url_verification without challenge');
        return {
          messages: [],
          response: { status: 200, headers: { 'content-type': 'text/plain' }, body: challenge },
        };
      }
      case 'event_callback':
        return this.event(body, resolved);
      default:
        this.logger.debug({ tenant, type: body['type'] }, 'slack callback type ignored');
        return { messages: [], response: ACK };
    }
  }

  private event(body: Record<string, unknown>, resolved: ResolvedChannel): IngressResult {
    const tenant = resolved.tenant.tenantId;
    const ev = body['event'];
    const eventId = str(body['event_id']);
    if (!isRecord(ev) || !eventId)
      throw new BadRequestError('slack: event_callback without event or event_id');
    const type = ev['type'];
    if (type !== 'message' && type !== 'app_mention') {
      this.logger.debug({ tenant, eventId, type }, 'slack event type ignored');
      return { messages: [], response: ACK };
    }
    const subtype = str(ev['subtype']);
    if (
      ev['bot_id'] !== undefined ||
      subtype === 'bot_message' ||
      !USER_SUBTYPES.has(subtype) ||
      typeof ev['user'] !== 'string'
    ) {
      this.logger.debug(
        { tenant, eventId, subtype, botId: ev['bot_id'] },
        'slack bot or system message ignored',
      );
      return { messages: [], response: ACK };
    }
    const channel = str(ev['channel']);
    const ts = str(ev['ts']);
    if (!channel || !ts) throw new BadRequestError('slack: message event without channel or ts');
    let text = str(ev['text']) ?? '';
    // "<@U0LAN0Z89> what's up" → "what's up": the mention is how the user got our attention, not content.
    if (type === 'app_mention') text = text.replace(/^\s*<@[A-Z0-9]+>\s*/, '');
    const threadTs =
      str(ev['thread_ts']) ??
      (resolved.channel.settings['reply_in_thread'] === true && ev['channel_type'] !== 'im' ? ts : undefined);
    const msg: InboundMessage = {
      id: eventId,
      conversationId: channel,
      userId: ev['user'] as string,
      text,
      timestamp: new Date(Number(ts) * 1000).toISOString(),
      raw: body,
      meta: {
        channel,
        ...(threadTs ? { thread_ts: threadTs } : {}),
        ...(str(body['team_id']) ? { team: str(body['team_id']) } : {}),
      },
    };
    return { messages: [msg], response: ACK };
  }

  /** `block_actions`: a button in a card we sent was clicked. Sent form-encoded as `payload=<json>`. */
  private interactive(req: ProviderRequest, resolved: ResolvedChannel): IngressResult {
    const form = new URLSearchParams(req.rawBody.toString('utf8'));
    const raw = form.get('payload');
    if (!raw) throw new BadRequestError('slack: interactive request without payload');
    const p = parseJsonObject(raw, 'slack interactive payload', resolved.tenantBinding.limits);
    if (p['type'] !== 'block_actions') {
      this.logger.debug(
        { tenant: resolved.tenant.tenantId, type: p['type'] },
        'slack interaction type ignored',
      );
      return { messages: [], response: ACK };
    }
    const user = isRecord(p['user']) ? str(p['user']['id']) : undefined;
    const container = isRecord(p['container']) ? p['container'] : {};
    const channel =
      (isRecord(p['channel']) ? str(p['channel']['id']) : undefined) ?? str(container['channel_id']);
    const action = Array.isArray(p['actions']) && isRecord(p['actions'][0]) ? p['actions'][0] : undefined;
    if (!user || !channel || !action)
      throw new BadRequestError('slack: block_actions without user, channel or action');
    const selected = isRecord(action['selected_option'])
      ? str(action['selected_option']['value'])
      : undefined;
    const label = isRecord(action['text']) ? str(action['text']['text']) : undefined;
    const value = str(action['value']) ?? selected ?? label ?? '';
    const submitted = cardSubmitOf(action, value);
    const message = isRecord(p['message']) ? p['message'] : {};
    const threadTs = str(container['thread_ts']) ?? str(message['thread_ts']);
    const id = str(p['trigger_id']) ?? `${channel}:${str(action['action_ts']) ?? Date.now()}`;
    return {
      messages: [
        {
          id,
          conversationId: channel,
          userId: user,
          text: submitted ? (label ?? submitEcho(submitted)) : value,
          action: submitted
            ? { type: 'card_submit', ...submitted }
            : {
                type: 'block_actions',
                action_id: action['action_id'],
                block_id: action['block_id'],
                value,
                ...(label ? { label } : {}),
              },
          raw: p,
          meta: { channel, ...(threadTs ? { thread_ts: threadTs } : {}) },
        },
      ],
      response: ACK,
    };
  }

  async send(msg: EgressMessage, resolved: ResolvedChannel, delivery: ReplyDelivery): Promise<void> {
    const client = this.client(resolved, await channelSecret(this.secrets, resolved, 'bot_token'));
    const channel = str(msg.meta?.['channel']) ?? msg.conversationId;
    const threadTs = str(msg.meta?.['thread_ts']);
    await delivery.replies(async (reply, _index, key) => {
      const parts = toSlackMessage(reply);
      if (!parts) return;
      try {
        // chat.postMessage has no idempotency key; the key rides in the message's metadata, so a
        // repeat is recognisable (conversations.history with include_all_metadata).
        await client.chat.postMessage({
          channel,
          ...parts,
          ...(threadTs ? { thread_ts: threadTs } : {}),
          metadata: { event_type: 'greentic_reply', event_payload: { idempotency_key: key } },
        });
      } catch (e) {
        throw slackEgressError(e);
      }
    });
  }

  /** One client per channel and token, so rotating the token takes effect without a restart. */
  private client(resolved: ResolvedChannel, token: string): WebClient {
    const url = baseUrl(resolved, 'api_base_url', SLACK_API) + '/';
    const key = `${tenantKey(resolved.tenant)}/${resolved.channel.id}|${url}|${createHash('sha256').update(token).digest('hex')}`;
    let c = this.clients.get(key);
    if (!c) {
      c = new WebClient(token, {
        slackApiUrl: url,
        // Retries belong to the egress dispatcher (bus redelivery honouring Retry-After), not to a hidden loop here.
        retryConfig: { retries: 0 },
        rejectRateLimitedCalls: true,
        timeout: 10_000,
        logger: slackLogger(this.logger),
        logLevel: LogLevel.WARN,
      });
      this.clients.set(key, c);
    }
    return c;
  }
}

/** The Adaptive Card Submit data a card button of ours carries (JSON value under a card_submit_ id). */
function cardSubmitOf(action: Record<string, unknown>, value: string): Record<string, unknown> | undefined {
  if (!str(action['action_id'])?.startsWith(CARD_SUBMIT_ACTION)) return undefined;
  try {
    const data = parseBoundedJson(value, DEFAULT_JSON_LIMITS);
    return isRecord(data) ? data : undefined;
  } catch {
    // Not JSON after all: read as a plain button value.
    return undefined;
  }
}

function slackEgressError(e: unknown): EgressError {
  if (e instanceof WebAPIRateLimitedError)
    return new EgressError('slack', 'chat.postMessage rate limited', true, e.retryAfter * 1000, 429);
  if (e instanceof WebAPIHTTPError)
    return new EgressError(
      'slack',
      `chat.postMessage answered ${e.statusCode}`,
      e.statusCode >= 500,
      undefined,
      e.statusCode,
    );
  if (e instanceof WebAPIPlatformError) {
    // Slack answered (HTTP 200, `ok: false`): nothing was posted, so at_most_once may retry it.
    return new EgressError(
      'slack',
      `chat.postMessage failed: ${e.data.error}`,
      RETRYABLE_PLATFORM_ERRORS.has(e.data.error),
      undefined,
      200,
    );
  }
  return new EgressError('slack', `chat.postMessage failed: ${(e as Error).message}`, true);
}

function slackLogger(l: Logger): SlackLogger {
  let level = LogLevel.WARN;
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...m: unknown[]) => l.debug(line(m)),
    info: (...m: unknown[]) => l.log(line(m)),
    warn: (...m: unknown[]) => l.warn(line(m)),
    error: (...m: unknown[]) => l.error(line(m)),
    setLevel: (v: LogLevel) => {
      level = v;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}
