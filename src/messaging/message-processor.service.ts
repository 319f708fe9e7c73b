import { Inject, Injectable, Logger } from '@nestjs/common';
import { context, SpanStatusCode, trace, propagation } from '@opentelemetry/api';
import { MetricService } from 'nestjs-otel';
import type { Histogram, Counter } from '@opentelemetry/api';
import { FlowExecutorService } from '../flows/flow-executor.service.js';
import { FlowRouter } from '../flows/flow-router.service.js';
import { SESSION_STORE, emptySession, type SessionStore } from '../sessions/session-store.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { MESSAGE_BUS, type MessageBus } from './message-bus.js';
import { egressSubject, type EgressMessage, type MessageEnvelope } from './message-envelope.js';

/** How long processed message ids are remembered per session (redeliveries inside it are not re-run). */
const IDEMPOTENCY_WINDOW_S = 24 * 3600;

/**
 * One inbound message, start to finish: per-session exclusion, idempotency, route, execute,
 * commit the session, publish the replies on egress. Returns null for a duplicate.
 */
@Injectable()
export class MessageProcessor {
  private readonly logger = new Logger(MessageProcessor.name);
  private readonly tracer = trace.getTracer('greentic-runner');
  private readonly flowLatency: Histogram;
  private readonly messages: Counter;

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
    this.messages = metrics.getCounter('greentic_messages_processed_total', {
      description: 'Messages processed by outcome',
    });
  }

  async process(env: MessageEnvelope, resolved: ResolvedChannel): Promise<EgressMessage | null> {
    const parent = propagation.extract(context.active(), { traceparent: env.traceparent ?? '' });
    const attrs = {
      'greentic.tenant': env.tenant,
      'greentic.env': env.env,
      'greentic.team': env.team,
      'greentic.channel': env.channel,
      'greentic.provider': env.provider,
    };
    return this.tracer.startActiveSpan('message', { attributes: attrs }, parent, async (span) => {
      try {
        const out = await this.sessions.runExclusive(resolved.tenant, env.sessionKey, () =>
          this.run(env, resolved),
        );
        span.setAttribute('greentic.outcome', out?.status ?? 'duplicate');
        return out;
      } catch (e) {
        span.recordException(e as Error);
        span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
        throw e;
      } finally {
        span.end();
      }
    });
  }

  private async run(env: MessageEnvelope, resolved: ResolvedChannel): Promise<EgressMessage | null> {
    const { tenant, channel, tenantBinding } = resolved;
    if (await this.sessions.isProcessed(tenant, env.sessionKey, env.id)) {
      this.logger.log(
        { tenant: env.tenant, messageId: env.id },
        'duplicate message acknowledged, not run again',
      );
      return null;
    }
    const started = performance.now();
    const session = (await this.sessions.load(tenant, env.sessionKey)) ?? emptySession(env.sessionKey);
    const route = this.router.route(resolved, session.snapshot);
    const result = await this.executor.run({
      tenant,
      message: env,
      pack: route.pack,
      flowId: route.flowId,
      snapshot: route.snapshot,
      sessionData: session.data,
      allowedSecrets: channel.secrets,
      stepLimit: tenantBinding.limits.flowStepLimit,
      componentDeadlineMs: tenantBinding.limits.componentDeadlineMs,
    });
    if (route.notice) result.replies.unshift({ text: route.notice });
    await this.sessions.commit(
      tenant,
      { ...session, snapshot: result.snapshot, data: result.sessionData },
      session.version,
      channel.sessionTtlSeconds,
    );
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
      ...(result.error ? { error: { code: result.error.code, message: result.error.message } } : {}),
      timestamp: new Date().toISOString(),
      traceparent: env.traceparent,
      ...(env.meta ? { meta: env.meta } : {}),
    };
    await this.bus.publish(egressSubject(env.env, env.tenant, env.team, env.channel), egress, {
      msgId: egress.id,
    });
    await this.sessions.markProcessed(tenant, env.sessionKey, env.id, IDEMPOTENCY_WINDOW_S);
    const ms = performance.now() - started;
    const labels = { tenant: env.tenant, channel: env.channel, outcome: result.status };
    this.flowLatency.record(ms, labels);
    this.messages.add(1, labels);
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
}
