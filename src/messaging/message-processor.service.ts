import { Inject, Injectable, Logger, Scope } from '@nestjs/common';
import { MetricService } from 'nestjs-otel';
import type { Counter, Histogram } from '@opentelemetry/api';
import { FlowRouter } from '../packs/flow-router.service.js';
import { DeliveryLimitError, TenancyMismatchError } from '../common/errors.js';
import {
  findProcessed,
  REPLAY_WINDOW_S,
  withoutEgress,
  withProcessed,
} from '../sessions/processed-window.js';
import { ExpiringMap } from '../common/expiring-map.js';
import { emptySession, type SessionRecord } from '../core/session-store.js';
import { TENANT_CTX, tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import { messageCtxOf, type MessageCtx } from '../core/message-ctx.js';
import { TenantSessions } from '../sessions/tenant-sessions.service.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { LabelGuard } from '../common/label-guard.js';
import { InflightWork } from './inflight-work.js';
import { ReplyWaiter } from './reply-waiter.service.js';
import { MESSAGE_BUS, type MessageBus, type PublishAck } from '../core/message-bus.js';
import {
  messageDedupeId,
  type DuplicateNotice,
  type EgressMessage,
  type MessageEnvelope,
} from '../core/message-envelope.js';
import { egressSubject, REPLAY_HEADER } from '../core/subjects.js';
import type { OwnershipFence } from '../core/partition-ownership.js';
import { isoNow } from '../common/iso-time.js';
import { FLOW_RUNNER, type FlowRunInput, type FlowRunner } from '../flows/flow-run.types.js';

/** How a message reached the processor: what the bus and the ingress publish said of it. */
export interface MessageDelivery {
  /**
   * The partition ownership it runs under (NATS bus): the owner runs a session's messages one at a
   * time, so no per-message lock is taken, the session may come from the owner's cache, and the
   * commit is refused if the partition moved on.
   */
  fence?: OwnershipFence;
  /** The reply subject of the replica where a caller waits (`?wait=true`); replies go there once. */
  replyTo?: string;
  /**
   * Delivered past its delivery limit: acknowledged (its stored replies re-published) if this
   * session already processed it, refused with DeliveryLimitError otherwise; the flow never runs.
   */
  pastLimit?: boolean;
}

/**
 * One inbound message, start to finish: idempotency, route, execute, commit the session, publish
 * the replies. Returns null for a duplicate (an id this session already ran; a waiting caller is
 * told on its reply subject).
 *
 * One Redis round trip per message at a partition owner: the session comes from the owner's cache
 * and the commit is one compare-and-set that also checks the partition's epoch. The processed id
 * and the replies are committed atomically with the session, then published on egress with
 * `Nats-Msg-Id` = reply id (in its session) and to the waiting replica. The replies stay in the
 * record for the replay window: a redelivery (the replica died after the commit, or a new owner
 * replays the partition's tail) finds the id and re-publishes them with the same id, which
 * JetStream de-duplicates if the first publish had landed (a restarted broker has forgotten ids
 * whose messages were consumed: the copy is marked as a replay, and egress checks its delivery
 * ledger for it); the flow never runs twice. Dying
 * before the commit leaves nothing behind, so the flow runs again.
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
  /**
   * Per session, the ids whose replies this replica published since its last commit there: the
   * next commit drops their stored copies, so a later redelivery (a stale consumer after a broker
   * restart) does not publish them again past JetStream's window. Costs no extra write.
   */
  private readonly published = new ExpiringMap<string, string[]>(10_000, REPLAY_WINDOW_S * 1000);

  constructor(
    @Inject(TENANT_CTX) readonly tenant: TenantCtx,
    private readonly sessions: TenantSessions,
    private readonly components: TenantComponents,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    private readonly router: FlowRouter,
    @Inject(FLOW_RUNNER) private readonly flows: FlowRunner,
    private readonly inflight: InflightWork,
    private readonly waiter: ReplyWaiter,
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
  async process(
    env: MessageEnvelope,
    resolved: ResolvedChannel,
    delivery: MessageDelivery = {},
  ): Promise<EgressMessage | null> {
    if (resolved.tenant !== this.tenant && tenantKey(resolved.tenant) !== tenantKey(this.tenant))
      throw new TenancyMismatchError(
        `the message processor of tenant '${this.tenant.tenantId}' was handed a channel of tenant '${resolved.tenant.tenantId}'`,
        { tenant: this.tenant.tenantId },
      );
    // Built once; the envelope's own tenancy claims were checked against the hop's by the caller.
    const msg = messageCtxOf(env, this.tenant);
    const counted = (outcome: string): void =>
      this.messagesIn.add(1, this.labels.bound({ tenant: env.tenant, channel: env.channel, outcome }));
    // then() on the run rather than an async closure around it: fewer promises per message, each
    // a hook call when tracing is on.
    return this.inflight.track('processing', () =>
      // A partition owner already runs one message of a session at a time (its session lanes).
      (delivery.fence
        ? this.run(env, msg, resolved, delivery)
        : this.sessions.runExclusive(msg.sessionKey, () => this.run(env, msg, resolved, delivery))
      ).then(
        (out) => {
          counted(out?.status ?? 'duplicate');
          return out;
        },
        (e: unknown) => {
          counted('error');
          throw e;
        },
      ),
    );
  }

  private async run(
    env: MessageEnvelope,
    msg: MessageCtx,
    resolved: ResolvedChannel,
    delivery: MessageDelivery,
  ): Promise<EgressMessage | null> {
    const { tenant, channel, tenantBinding } = resolved;
    const { fence, replyTo, pastLimit } = delivery;
    const session = (await this.sessions.load(msg.sessionKey, fence)) ?? emptySession(msg.sessionKey);
    const seen = findProcessed(session.processed, msg.messageId);
    if (seen) {
      if (seen.egress) {
        await this.publishReplies(seen.egress as unknown as EgressMessage, replyTo, true);
        this.markPublished(msg.sessionKey, env.id);
        this.logger.log(
          { tenant: env.tenant, messageId: env.id },
          'redelivered message: stored replies re-published, flow not run again',
        );
      } else {
        this.logger.log(
          { tenant: env.tenant, messageId: env.id },
          'duplicate message acknowledged, not run again',
        );
        if (replyTo) await this.announceDuplicate(env, replyTo);
      }
      return null;
    }
    if (pastLimit) throw new DeliveryLimitError(env.id);
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
    const landed = this.published.get(msg.sessionKey);
    if (landed) this.published.delete(msg.sessionKey);
    const processed = withProcessed(
      landed && session.processed ? withoutEgress(session.processed, landed) : session.processed,
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
      committed,
      session.version,
      channel.sessionTtlSeconds,
      fence ? { fence, last: true } : { last: true },
    );
    await this.publishReplies(egress, replyTo);
    if (durable) this.markPublished(msg.sessionKey, env.id);
    const ms = performance.now() - started;
    this.flowLatency.record(
      ms,
      this.labels.bound({ tenant: env.tenant, channel: env.channel, outcome: result.status }),
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

  private markPublished(sessionKey: string, id: string): void {
    const ids = this.published.get(sessionKey);
    if (ids) ids.push(id);
    else this.published.set(sessionKey, [id]);
  }

  /**
   * On egress (once, de-duplicated by reply id) and, when a caller waits, to its replica's reply
   * subject: one publish on NATS (the waiting replica is named in the egress subject). A caller
   * waiting on this replica is answered in process at once: the replies are committed with the
   * session (or re-published from it), as a waiting replica's copy on NATS reaches it when the
   * broker receives the publish, not when JetStream acknowledges it. A publish that then fails is
   * retried for egress; the caller has its answer either way (after a broker restart the PubAck
   * can take seconds).
   */
  private publishReplies(
    egress: EgressMessage,
    replyTo: string | undefined,
    replay = false,
  ): Promise<PublishAck> {
    const headers: Record<string, string> = { 'greentic-tenant': egress.tenant, 'greentic-env': egress.env };
    if (egress.traceparent) headers['traceparent'] = egress.traceparent;
    // Published before, perhaps (past JetStream's window the bus no longer drops it): egress checks
    // its delivery ledger as for a redelivery, so a reply already sent is not sent again.
    if (replay) headers[REPLAY_HEADER] = '1';
    const here = this.waiter.isHere(replyTo);
    if (here) this.waiter.deliver(egress);
    return this.bus.publish(egressSubject(egress.env, egress.tenant, egress.team, egress.channel), egress, {
      // Reply ids repeat across sessions as message ids do: two users' replies to `1` are two.
      msgId: messageDedupeId(egress.sessionKey, egress.id),
      headers,
      replyTo: here ? undefined : replyTo,
    });
  }

  /** A waiting caller's answer: core NATS, no ack; a lost one costs that caller a 504, never the reply. */
  private async answer(
    replyTo: string,
    m: EgressMessage | DuplicateNotice,
    headers: Record<string, string>,
  ): Promise<void> {
    if (this.waiter.isHere(replyTo)) return this.waiter.deliver(m);
    try {
      await this.bus.publish(replyTo, m, { headers });
    } catch (e) {
      this.logger.warn(
        { tenant: m.tenant, messageId: m.inReplyTo, replyTo, err: (e as Error).message },
        'could not answer the waiting replica',
      );
    }
  }

  /**
   * Tells a caller waiting for this repeat's replies (`?wait=true`) that none will come: the id
   * ran before, past the replay window, and its replies went out then.
   */
  private async announceDuplicate(env: MessageEnvelope, replyTo: string): Promise<void> {
    const notice: DuplicateNotice = {
      inReplyTo: env.id,
      tenant: env.tenant,
      env: env.env,
      team: env.team,
      channel: env.channel,
      sessionKey: env.sessionKey,
    };
    await this.answer(replyTo, notice, { 'greentic-tenant': env.tenant, 'greentic-env': env.env });
  }
}
