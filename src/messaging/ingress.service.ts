import { Inject, Injectable, Logger } from '@nestjs/common';
import { context, propagation, trace } from '@opentelemetry/api';
import { RunnerConfig } from '../config/runner-config.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { buildSessionKey } from '../core/message-ctx.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { messageDedupeId, type EgressMessage, type MessageEnvelope } from '../core/message-envelope.js';
import { ingressSubject, REPLY_TO_HEADER } from '../core/subjects.js';
import type { InboundMessage } from './providers/messaging-provider.js';
import { ReplyWaiter, replyRef } from './reply-waiter.service.js';
import { isoNow } from '../common/iso-time.js';

/** Largest `raw` provider payload kept on the envelope. */
const RAW_CAP_BYTES = 16 * 1024;

/** Turns what a provider parsed into envelopes and puts them on the ingress subject. */
@Injectable()
export class IngressService {
  private readonly logger = new Logger(IngressService.name);

  constructor(
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly waiter: ReplyWaiter,
    private readonly config: RunnerConfig,
  ) {}

  /** The envelope carries the active trace (the webhook's span, when traced) as `traceparent`. */
  envelope(resolved: ResolvedChannel, m: InboundMessage, sourceBytes?: number): MessageEnvelope {
    const { tenant, channel } = resolved;
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    const raw = m.raw === undefined ? undefined : capRaw(m.raw, sourceBytes);
    // Optional fields assigned, not spread: an object literal with spreads is built the slow way.
    const e: MessageEnvelope = {
      id: m.id,
      tenant: tenant.tenantId,
      env: tenant.envId,
      team: tenant.teamId ?? 'default',
      channel: channel.id,
      provider: channel.provider,
      conversationId: m.conversationId,
      userId: m.userId,
      sessionKey: buildSessionKey(tenant.tenantId, channel.provider, m.conversationId, m.userId),
      text: m.text,
      attachments: m.attachments ?? [],
      timestamp: m.timestamp ?? isoNow(),
    };
    if (m.action) e.action = m.action;
    if (m.locale) e.locale = m.locale;
    if (m.meta) e.meta = m.meta;
    if (raw !== undefined) e.raw = raw;
    if (carrier['traceparent']) e.traceparent = carrier['traceparent'];
    return e;
  }

  /**
   * Publishes and, when `wait`, resolves with the flow's replies (or rejects with 504 after the
   * timeout, for a message the bus accepted). `sourceBytes`: the size of the request body the
   * messages were parsed from, when they were (it bounds the size of their `raw` payloads).
   */
  async accept(
    resolved: ResolvedChannel,
    messages: InboundMessage[],
    wait: boolean,
    sourceBytes?: number,
  ): Promise<IngressOutcome> {
    const envs = messages.map((m) => this.envelope(resolved, m, sourceBytes));
    // A repeated id (the bus drops it as a duplicate, no flow runs) is answered with the reply
    // the ReplyWaiter remembers, or waits for it while the first delivery is still running.
    const waits = wait
      ? envs.map((e) => this.waiter.expect(replyRef(e), this.config.GREENTIC_SYNC_TIMEOUT_MS))
      : [];
    let duplicates: string[] | undefined;
    try {
      for (let i = 0; i < envs.length; i++) {
        const e = envs[i]!;
        const headers: Record<string, string> = { 'greentic-tenant': e.tenant, 'greentic-env': e.env };
        if (e.traceparent) headers['traceparent'] = e.traceparent;
        if (wait) headers[REPLY_TO_HEADER] = this.waiter.subject;
        const subject = ingressSubject(e.env, e.tenant, e.team, e.channel);
        const msgId = messageDedupeId(e.sessionKey, e.id);
        const ack = await this.bus.publish(subject, e, { msgId, headers });
        if (!ack.duplicate) continue;
        waits[i]?.duplicate();
        if (wait && !waits[i]!.answered) {
          // A retry of a waiting call, perhaps first sent to another replica: this replica may
          // never see those replies. Asked once more under an id scoped to this replica, the
          // session's owner answers here from the replies stored with the session, without
          // running the flow again (a repeat of this ask inside the window is dropped).
          await this.bus.publish(subject, e, { msgId: `${msgId}@${this.waiter.replica}`, headers });
        }
        (duplicates ??= []).push(e.id);
        this.logger.log(
          { tenant: e.tenant, channel: e.channel, messageId: e.id },
          'repeated message id of the same session inside the duplicate window: not run again',
        );
      }
    } catch (err) {
      for (const w of waits) w.cancel();
      throw err;
    }
    trace.getActiveSpan()?.setAttribute('greentic.messages', envs.length);
    if (waits.length === 0) return duplicates ? { replies: [], duplicates } : PUBLISHED;
    // One message per webhook is the rule: no Promise.all for it.
    const replies =
      waits.length === 1 ? [await waits[0]!.reply] : await Promise.all(waits.map((w) => w.reply));
    return { replies, duplicates: duplicates ?? NONE };
  }
}

/** What became of the messages of one request. */
export interface IngressOutcome {
  /**
   * When the caller waits, per message in order: the flow's replies, or null for a repeat of an
   * id this session already sent whose replies are not at hand (it is not run again).
   */
  replies: readonly (EgressMessage | null)[];
  /** Ids the bus dropped as repeats of the same session's inside the duplicate window. */
  duplicates: readonly string[];
}

const NONE: readonly string[] = Object.freeze([]);
const PUBLISHED: IngressOutcome = Object.freeze({ replies: Object.freeze([]), duplicates: NONE });

/**
 * How much longer JSON can get when parsed and serialised again: strings, literals and whitespace
 * never grow, numbers in exponent form do (`1e20`, 4 bytes, comes back as 21 digits).
 */
const MAX_JSON_GROWTH = 6;

/**
 * `raw` as it is, or a note of its size when its JSON passes the cap, or a note that it has no JSON
 * when it cannot be serialised (the bus could not carry it). A payload parsed from a body small
 * enough that even its worst-case growth stays under the cap is not serialised just to be measured
 * (the common case: webhook bodies are a few KiB).
 */
export function capRaw(raw: unknown, sourceBytes?: number): unknown {
  if (sourceBytes !== undefined && sourceBytes * MAX_JSON_GROWTH <= RAW_CAP_BYTES) return raw;
  let s: string | undefined;
  try {
    s = JSON.stringify(raw);
  } catch {
    // Nested past the stack (RangeError), cyclic or holding a BigInt (TypeError). Bodies are
    // depth-checked before parsing; this keeps any other caller's payload from failing the message.
    return { truncated: true, unserialisable: true };
  }
  return s !== undefined && s.length > RAW_CAP_BYTES ? { truncated: true, bytes: s.length } : raw;
}
