import { Inject, Injectable, Logger } from '@nestjs/common';
import { context, propagation, trace, type Context } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel';
import type { Histogram } from '@opentelemetry/api';
import { FlowExecutorService } from '../flows/flow-executor.service.js';
import { FlowRouter } from '../packs/flow-router.service.js';
import { SessionConflictError } from '../common/errors.js';
import { findProcessed, withoutEgress, withProcessed } from '../sessions/processed-window.js';
import {
  SESSION_STORE,
  emptySession,
  type SessionRecord,
  type SessionStore,
} from '../core/session-store.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { LabelGuard } from '../telemetry/runner-metrics.js';
import { failSpan, traceFields, tracingOn } from '../telemetry/trace-fields.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import {
  messageDedupeId,
  type DuplicateNotice,
  type EgressMessage,
  type MessageEnvelope,
} from '../core/message-envelope.js';
import { duplicateSubject, egressSubject } from '../core/subjects.js';
import { isoNow } from '../common/iso-time.js';
import type { FlowRunInput } from '../flows/flow-run.types.js';

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
 */
@Injectable()
export class MessageProcessor {
  private readonly logger = new Logger(MessageProcessor.name);
  private readonly tracer = trace.getTracer('greentic-runner');
  private readonly flowLatency: Histogram;
  private readonly labels = new LabelGuard();

  constructor(
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly router: FlowRouter,
    private readonly executor: FlowExecutorService,
    metrics: MetricService,
  ) {
    this.flowLatency = metrics.getHistogram('greentic_flow_duration_ms', {
      description: 'Time to run a flow for one message',
      unit: 'ms',
    });
  }

  /** `parent`: the delivery's trace (its consume span); else the envelope's `traceparent`. */
  async process(
    env: MessageEnvelope,
    resolved: ResolvedChannel,
    parent: Context = propagation.extract(context.active(), { traceparent: env.traceparent ?? '' }),
  ): Promise<EgressMessage | null> {
    // Without a tracer recording, no span at all: a no-op one still costs a context copy.
    if (!tracingOn(parent))
      return this.sessions.runExclusive(resolved.tenant, env.sessionKey, () =>
        this.run(env, resolved, parent),
      );
    const attrs = {
      'greentic.tenant': env.tenant,
      'greentic.env': env.env,
      'greentic.team': env.team,
      'greentic.channel': env.channel,
      'greentic.provider': env.provider,
    };
    const span = this.tracer.startSpan('message', { attributes: attrs }, parent);
    // Handed down explicitly (nodes, components, commits, the egress publish): no async context.
    const traceContext = trace.setSpan(parent, span);
    try {
      const out = await this.sessions.runExclusive(resolved.tenant, env.sessionKey, () =>
        this.run(env, resolved, traceContext),
      );
      span.setAttribute('greentic.outcome', out?.status ?? 'duplicate');
      return out;
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  }

  private async run(
    env: MessageEnvelope,
    resolved: ResolvedChannel,
    traceContext: Context,
  ): Promise<EgressMessage | null> {
    const { tenant, channel, tenantBinding } = resolved;
    const session = (await this.sessions.load(tenant, env.sessionKey)) ?? emptySession(env.sessionKey);
    const seen = findProcessed(session.processed, env.id);
    if (seen) {
      if (seen.egress) {
        await this.publishEgress(seen.egress as unknown as EgressMessage, traceContext);
        await this.confirmPublished(resolved, session, env.id, traceContext);
        this.logger.log(
          { tenant: env.tenant, messageId: env.id, ...traceFields(traceContext) },
          'redelivered message: stored replies re-published, flow not run again',
        );
      } else {
        this.logger.log(
          { tenant: env.tenant, messageId: env.id, ...traceFields(traceContext) },
          'duplicate message acknowledged, not run again',
        );
        await this.announceDuplicate(env, traceContext);
      }
      return null;
    }
    const started = performance.now();
    const route = this.router.route(resolved, session.snapshot);
    const runInput: FlowRunInput = {
      tenant,
      message: env,
      pack: route.pack,
      flowId: route.flowId,
      snapshot: route.snapshot,
      sessionData: session.data,
      allowedSecrets: channel.secrets,
      stepLimit: tenantBinding.limits.flowStepLimit,
      componentDeadlineMs: tenantBinding.limits.componentDeadlineMs,
      traceContext,
    };
    const retry = channel.retry ?? tenantBinding.retry;
    if (retry) runInput.defaultRetry = retry;
    const result = await this.executor.run(runInput);
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
    committed.version = await this.sessions.commit(
      tenant,
      committed,
      session.version,
      channel.sessionTtlSeconds,
      traceContext,
    );
    await this.publishEgress(egress, traceContext);
    if (durable) await this.confirmPublished(resolved, committed, env.id, traceContext);
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
          ...traceFields(traceContext),
        },
        'flow failed',
      );
    }
    return egress;
  }

  private async publishEgress(egress: EgressMessage, traceContext: Context): Promise<void> {
    const headers: Record<string, string> = { 'greentic-tenant': egress.tenant, 'greentic-env': egress.env };
    if (egress.traceparent) headers['traceparent'] = egress.traceparent;
    await this.bus.publish(egressSubject(egress.env, egress.tenant, egress.team, egress.channel), egress, {
      // Reply ids repeat across sessions as message ids do: two users' replies to `1` are two.
      msgId: messageDedupeId(egress.sessionKey, egress.id),
      headers,
      traceContext,
    });
  }

  /**
   * Tells a caller waiting for this repeat's replies (`?wait=true`) that none will come: the id
   * ran before, past the bus's window, and its replies went out then. Nobody else needs it, so a
   * failed publish costs only that caller a quick answer, never the message.
   */
  private async announceDuplicate(env: MessageEnvelope, traceContext: Context): Promise<void> {
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
        traceContext,
      });
    } catch (e) {
      this.logger.warn(
        { tenant: env.tenant, messageId: env.id, err: (e as Error).message, ...traceFields(traceContext) },
        'could not announce a duplicate message to a waiting caller',
      );
    }
  }

  /** Drops the stored replies once published: from then on a redelivery is acked without a re-publish. */
  private async confirmPublished(
    resolved: ResolvedChannel,
    record: SessionRecord,
    messageId: string,
    traceContext: Context,
  ): Promise<void> {
    if (!findProcessed(record.processed, messageId)?.egress) return;
    const processed = withoutEgress(record.processed ?? [], messageId);
    try {
      await this.sessions.commit(
        resolved.tenant,
        { ...record, processed },
        record.version,
        resolved.channel.sessionTtlSeconds,
        traceContext,
        // The message's last write: a leasing store gives the session back with it.
        { last: true },
      );
    } catch (e) {
      // The session expired or moved on in between: the replies are out, and a later redelivery
      // re-publishes them under the same id, which JetStream drops inside its duplicate window.
      if (!(e instanceof SessionConflictError)) throw e;
      this.logger.warn(
        { tenant: resolved.tenant.tenantId, messageId, ...traceFields(traceContext) },
        'could not mark replies as published',
      );
    }
  }
}
