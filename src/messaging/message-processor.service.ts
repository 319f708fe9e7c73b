import { Inject, Injectable, Logger, Scope } from '@nestjs/common';
import { MetricService } from 'nestjs-otel';
import type { Counter, Histogram } from '@opentelemetry/api';
import { FlowRouter } from '../packs/flow-router.service.js';
import { SessionConflictError, TenancyMismatchError } from '../common/errors.js';
import { findProcessed, withoutEgress, withProcessed } from '../sessions/processed-window.js';
import { emptySession, type SessionRecord } from '../core/session-store.js';
import { TENANT_CTX, tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import { messageCtxOf, type MessageCtx } from '../core/message-ctx.js';
import { TenantSessions } from '../sessions/tenant-sessions.service.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { LabelGuard } from '../common/label-guard.js';
import { InflightWork } from './inflight-work.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import {
  messageDedupeId,
  type DuplicateNotice,
  type EgressMessage,
  type MessageEnvelope,
} from '../core/message-envelope.js';
import { duplicateSubject, egressSubject } from '../core/subjects.js';
import { isoNow } from '../common/iso-time.js';
import { FLOW_RUNNER, type FlowRunInput, type FlowRunner } from '../flows/flow-run.types.js';

/**
 * One inbound message, start to finish: per-session exclusion, idempotency, route, execute,
 * commit the session, publish the replies on egress. Returns null for a duplicate (an id this
 * session already ran; announced on the channel's duplicate subject for a caller that waits).
 *
 * Exactly one reply per message id, whatever step a replica dies at: the processed id and the
 * replies are committed atomically with the session (one compare-and-set), then published with
 * `Nats-Msg-Id` = reply id (in its session), then the stored replies are dropped (a second
 * commit). A redelivery finds the id: if the replies are still stored (died between commit and
 * confirm) it re-publishes them with the same id, which JetStream de-duplicates if the first
 * publish had landed; the flow never runs twice. Dying before the first commit leaves nothing
 * behind, so the flow runs again.
 *
 * Durable per tenant (TenantScopes hands out the tenant's instance): its sessions and component
 * calls are bound to TENANT_CTX, and a channel of another tenant is refused.
 */
@Injectable({ scope: Scope.REQUEST, durable: true })
export class MessageProcessor {
  private readonly logger = new Logger(MessageProcessor.name);
  private readonly flowLatency: Histogram;
  private readonly messagesIn: Counter;
  private readonly labels = new LabelGuard();

  constructor(
    @Inject(TENANT_CTX) readonly tenant: TenantCtx,
    private readonly sessions: TenantSessions,
    private readonly components: TenantComponents,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly router: FlowRouter,
    @Inject(FLOW_RUNNER) private readonly flows: FlowRunner,
    private readonly inflight: InflightWork,
    metrics: MetricService,
  ) {
    this.messagesIn = metrics.getCounter('greentic_messages_in', {
      description:
        'Inbound messages processed, by tenant, channel and outcome (completed, parked, failed, duplicate, error)',
    });
    this.flowLatency = metrics.getHistogram('greentic_flow_duration_ms', {
      description: 'Time to run a flow for one message',
      unit: 'ms',
    });
  }

  /**
   * Runs in the caller's trace context (the bus consume span, when traced): what it does, the flow
   * run and the reply publish, joins the message's trace through the active context.
   */
  async process(env: MessageEnvelope, resolved: ResolvedChannel): Promise<EgressMessage | null> {
    if (resolved.tenant !== this.tenant && tenantKey(resolved.tenant) !== tenantKey(this.tenant))
      throw new TenancyMismatchError(
        `the message processor of tenant '${this.tenant.tenantId}' was handed a channel of tenant '${resolved.tenant.tenantId}'`,
        { tenant: this.tenant.tenantId },
      );
    // Built once; the envelope's own tenancy claims were checked against the hop's by the caller.
    const msg = messageCtxOf(env, this.tenant);
    return this.inflight.track('processing', async () => {
      let outcome = 'error';
      try {
        const out = await this.sessions.runExclusive(msg.sessionKey, () => this.run(env, msg, resolved));
        outcome = out?.status ?? 'duplicate';
        return out;
      } finally {
        this.messagesIn.add(
          1,
          this.labels.boundFor(resolved, `in:${outcome}`, () => ({
            tenant: env.tenant,
            channel: env.channel,
            outcome,
          })),
        );
      }
    });
  }

  private async run(
    env: MessageEnvelope,
    msg: MessageCtx,
    resolved: ResolvedChannel,
  ): Promise<EgressMessage | null> {
    const { tenant, channel, tenantBinding } = resolved;
    const session = (await this.sessions.load(msg.sessionKey)) ?? emptySession(msg.sessionKey);
    const seen = findProcessed(session.processed, msg.messageId);
    if (seen) {
      if (seen.egress) {
        await this.publishEgress(seen.egress as unknown as EgressMessage);
        await this.confirmPublished(resolved, session, env.id);
        this.logger.log(
          { tenant: env.tenant, messageId: env.id },
          'redelivered message: stored replies re-published, flow not run again',
        );
      } else {
        this.logger.log(
          { tenant: env.tenant, messageId: env.id },
          'duplicate message acknowledged, not run again',
        );
        await this.announceDuplicate(env);
      }
      return null;
    }
    const started = performance.now();
    const route = this.router.route(resolved, session.snapshot);
    const runInput: FlowRunInput = {
      tenant,
      components: this.components,
      ctx: msg,
      message: env,
      pack: route.pack,
      flowId: route.flowId,
      snapshot: route.snapshot,
      sessionData: session.data,
      allowedSecrets: channel.secrets,
      stepLimit: tenantBinding.limits.flowStepLimit,
      componentDeadlineMs: tenantBinding.limits.componentDeadlineMs,
    };
    const retry = channel.retry ?? tenantBinding.retry;
    if (retry) runInput.defaultRetry = retry;
    const result = await this.flows.run(runInput);
    if (route.notice) result.replies.unshift({ text: route.notice });
    // Optional fields assigned, not spread: an object literal with spreads is built the slow way.
    const egress: EgressMessage = {
      id: `${env.id}:reply`,
      inReplyTo: env.id,
      tenant: env.tenant,
      env: env.env,
      team: env.team,
      channel: env.channel,
      provider: env.provider,
      conversationId: env.conversationId,
      userId: env.userId,
      sessionKey: env.sessionKey,
      replies: result.replies,
      status: result.status,
      timestamp: isoNow(),
      traceparent: env.traceparent,
    };
    if (result.error) egress.error = { code: result.error.code, message: result.error.message };
    if (env.meta) egress.meta = env.meta;
    const now = Date.now();
    // A store that dies with the process has no redelivery to re-publish for: no stored replies.
    const durable = this.sessions.durable;
    const processed = withProcessed(
      session.processed,
      durable
        ? { id: env.id, at: now, egress: egress as unknown as Record<string, unknown> }
        : { id: env.id, at: now },
      now,
    );
    const committed: SessionRecord = {
      key: session.key,
      version: session.version,
      snapshot: result.snapshot,
      data: result.sessionData,
      updatedAt: session.updatedAt,
      processed,
    };
    committed.version = await this.sessions.commit(committed, session.version, channel.sessionTtlSeconds);
    await this.publishEgress(egress);
    if (durable) await this.confirmPublished(resolved, committed, env.id);
    const ms = performance.now() - started;
    this.flowLatency.record(
      ms,
      this.labels.boundFor(resolved, result.status, () => ({
        tenant: env.tenant,
        channel: env.channel,
        outcome: result.status,
      })),
    );
    if (result.status === 'failed') {
      this.logger.warn(
        {
          tenant: env.tenant,
          env: env.env,
          channel: env.channel,
          messageId: env.id,
          flow: route.flowId,
          error: result.error,
        },
        'flow failed',
      );
    }
    return egress;
  }

  private async publishEgress(egress: EgressMessage): Promise<void> {
    const headers: Record<string, string> = { 'greentic-tenant': egress.tenant, 'greentic-env': egress.env };
    if (egress.traceparent) headers['traceparent'] = egress.traceparent;
    await this.bus.publish(egressSubject(egress.env, egress.tenant, egress.team, egress.channel), egress, {
      // Reply ids repeat across sessions as message ids do: two users' replies to `1` are two.
      msgId: messageDedupeId(egress.sessionKey, egress.id),
      headers,
    });
  }

  /**
   * Tells a caller waiting for this repeat's replies (`?wait=true`) that none will come: the id
   * ran before, past the bus's window, and its replies went out then. Nobody else needs it, so a
   * failed publish costs only that caller a quick answer, never the message.
   */
  private async announceDuplicate(env: MessageEnvelope): Promise<void> {
    const notice: DuplicateNotice = {
      inReplyTo: env.id,
      tenant: env.tenant,
      env: env.env,
      team: env.team,
      channel: env.channel,
      sessionKey: env.sessionKey,
    };
    try {
      await this.bus.publish(duplicateSubject(env.env, env.tenant, env.team, env.channel), notice, {
        headers: { 'greentic-tenant': env.tenant, 'greentic-env': env.env },
      });
    } catch (e) {
      this.logger.warn(
        { tenant: env.tenant, messageId: env.id, err: (e as Error).message },
        'could not announce a duplicate message to a waiting caller',
      );
    }
  }

  /** Drops the stored replies once published: from then on a redelivery is acked without a re-publish. */
  private async confirmPublished(
    resolved: ResolvedChannel,
    record: SessionRecord,
    messageId: string,
  ): Promise<void> {
    if (!findProcessed(record.processed, messageId)?.egress) return;
    const processed = withoutEgress(record.processed ?? [], messageId);
    try {
      await this.sessions.commit(
        { ...record, processed },
        record.version,
        resolved.channel.sessionTtlSeconds,
        // The message's last write: a leasing store gives the session back with it.
        { last: true },
      );
    } catch (e) {
      // The session expired or moved on in between: the replies are out, and a later redelivery
      // re-publishes them under the same id, which JetStream drops inside its duplicate window.
      if (!(e instanceof SessionConflictError)) throw e;
      this.logger.warn(
        { tenant: resolved.tenant.tenantId, messageId },
        'could not mark replies as published',
      );
    }
  }
}
