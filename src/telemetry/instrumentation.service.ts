import { Inject, Injectable, Logger, Optional, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { ComponentMemoryExceededError, ComponentTimeoutError } from '../common/errors.js';
import type { FlowRunInput, FlowRunResult } from '../flows/flow-run.types.js';
import { FlowExecutorService } from '../flows/flow-executor.service.js';
import {
  MESSAGE_BUS,
  type BusHandler,
  type MessageBus,
  type PublishOptions,
  type SubscribeOptions,
} from '../core/message-bus.js';
import { type EgressMessage, type MessageEnvelope } from '../core/message-envelope.js';
import { parseSubject } from '../core/subjects.js';
import { MessageProcessor } from '../messaging/message-processor.service.js';
import { PackRegistry, type ReloadResult } from '../packs/pack-registry.service.js';
import { SecretsService } from '../secrets/secrets.service.js';
import {
  SESSION_STORE,
  type CommitOptions,
  type SessionRecord,
  type SessionStore,
} from '../core/session-store.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { COMPONENT_RUNTIME, type ComponentCall, type ComponentRuntime } from '../core/component-runtime.js';
import { telemetry } from './otel.js';
import { RunnerMetrics } from './runner-metrics.js';
import type { Attributes } from '@opentelemetry/api';
import { failSpan } from './trace-fields.js';

/** Header carrying the publish time, for the bus-lag histogram. */
export const PUBLISHED_AT_HEADER = 'greentic-published-at';
const MAX_TRACED_TEXT = 256;

/** Counts of work in progress, for graceful shutdown and `/health`. */
export class InflightWork {
  /** Inbound messages between the bus handing them over and their egress being published. */
  processing = 0;
  /** Bus handlers running (ingress, egress delivery, reply waiters). */
  busHandlers = 0;
  private idleWaiters: (() => void)[] = [];

  get total(): number {
    return this.processing + this.busHandlers;
  }

  enter(kind: 'processing' | 'busHandlers'): void {
    this[kind]++;
  }

  leave(kind: 'processing' | 'busHandlers'): void {
    this[kind]--;
    if (this.total === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves once nothing is in flight (a moment of zero; new work may start after). */
  idle(): Promise<void> {
    return this.total === 0 ? Promise.resolve() : new Promise((r) => this.idleWaiters.push(r));
  }
}

/**
 * Puts spans and metrics around the runner's I/O seams without those modules knowing: the bus
 * (publish/consume spans linked by W3C `traceparent` headers, bus lag), the session store (commit
 * span, latency), the component runtime (call span, latency, timeouts, memory kills), the flow
 * executor (node latency from its node trace), the message processor (messages in by outcome)
 * and pack reloads. It wraps the methods of the live instances at module init, as OpenTelemetry's
 * own instrumentations do, so every implementation behind a seam (memory or NATS bus, memory or
 * Redis store) is covered the same way. With the SDK off, spans and instruments are no-ops and
 * only the in-flight counts remain.
 */
@Injectable()
export class RunnerInstrumentation implements OnModuleInit {
  private readonly logger = new Logger(RunnerInstrumentation.name);
  private readonly tracer = trace.getTracer('greentic-runner');
  readonly inflight = new InflightWork();
  private wrapped = false;

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly m: RunnerMetrics,
    @Optional() @Inject(MESSAGE_BUS) bus?: MessageBus,
  ) {
    // The bus is wrapped here, not in onModuleInit: bootstrap subscribes the ingress consumers
    // (BusTransport) before the application's init hooks run.
    if (bus) this.wrapBus(bus);
  }

  onModuleInit(): void {
    if (this.wrapped) return;
    this.wrapped = true;
    const store = this.find<SessionStore>(SESSION_STORE);
    if (store) this.wrapSessionStore(store);
    const runtime = this.find<ComponentRuntime>(COMPONENT_RUNTIME);
    if (runtime) this.wrapRuntime(runtime);
    const executor = this.find(FlowExecutorService);
    if (executor) this.wrapExecutor(executor);
    const processor = this.find(MessageProcessor);
    if (processor) this.wrapProcessor(processor);
    const packs = this.find(PackRegistry);
    if (packs) this.wrapPacks(packs);
    const secrets = this.find(SecretsService);
    if (secrets) this.observeSecrets(secrets);
    this.m
      .gauge('greentic_inflight_messages', 'Inbound messages being processed now')
      .addCallback((r) => r.observe(this.inflight.processing));
  }

  private find<T>(token: string | symbol | (abstract new (...args: never[]) => T)): T | undefined {
    try {
      return this.moduleRef.get<T>(token as never, { strict: false });
    } catch {
      this.logger.debug(
        { token: String(typeof token === 'function' ? token.name : token) },
        'not instrumented: provider absent',
      );
      return undefined;
    }
  }

  private wrapBus(bus: MessageBus): void {
    const publish = bus.publish.bind(bus);
    const subscribe = bus.subscribe.bind(bus);
    const tracer = this.tracer;
    const m = this.m;
    const inflight = this.inflight;
    const system = bus.kind;
    const traceText = telemetry()?.settings.traceMessageText ?? false;
    const tracing = telemetry()?.tracing ?? false;
    // The in-process bus stamps its deliveries itself (`publishedAt`); others carry the publish
    // time across processes in a header.
    const stampsItself = bus.kind === 'memory';

    bus.publish = (subject: string, data: unknown, opts: PublishOptions = {}) => {
      if (!tracing) {
        if (stampsItself) return publish(subject, data, opts);
        // No spans to start or propagate: only the publish time, for the bus-lag histogram.
        const headers = { ...(opts.headers ?? {}), [PUBLISHED_AT_HEADER]: String(Date.now()) };
        return publish(subject, data, { ...opts, headers });
      }
      const parts = parseSubject(subject);
      const parent = opts.traceContext ?? context.active();
      const span = tracer.startSpan(
        `publish ${parts?.direction ?? subject}`,
        {
          kind: SpanKind.PRODUCER,
          attributes: {
            'messaging.system': system,
            'messaging.destination.name': subject,
            ...(opts.msgId !== undefined ? { 'messaging.message.id': opts.msgId } : {}),
            ...tenancyAttrs(parts),
          },
        },
        parent,
      );
      const headers: Record<string, string> = {
        ...(opts.headers ?? {}),
        [PUBLISHED_AT_HEADER]: String(Date.now()),
      };
      propagation.inject(trace.setSpan(parent, span), headers);
      return publish(subject, data, { ...opts, headers }).then(
        (ack) => {
          if (ack.duplicate) span.setAttribute('greentic.duplicate', true);
          span.end();
          return ack;
        },
        (e: unknown) => {
          failSpan(span, e);
          span.end();
          throw e;
        },
      );
    };

    bus.subscribe = <T>(pattern: string, handler: BusHandler<T>, opts?: SubscribeOptions) =>
      subscribe<T>(
        pattern,
        async (msg) => {
          inflight.enter('busHandlers');
          const parts = parseSubject(msg.subject);
          // Lag is a property of a delivery to a consumer group; fan-out listeners (the reply
          // waiters) would only count the same delivery again.
          const publishedAt =
            opts?.queue === undefined ? NaN : (msg.publishedAt ?? Number(msg.headers[PUBLISHED_AT_HEADER]));
          if (Number.isFinite(publishedAt) && publishedAt > 0)
            m.busLag.record(Math.max(0, Date.now() - publishedAt), lagLabels(m, parts));
          const countOut = parts?.direction === 'egress' && opts?.queue !== undefined;
          // Fan-out listeners (reply waiters, the dead-letter store) get no span of their own: the
          // consumer group's delivery is the hop in the message's trace.
          if (!tracing || opts?.queue === undefined) {
            try {
              await handler(msg);
              if (countOut) m.messagesOut.add(1, outLabelsOf(m, parts!, 'delivered'));
            } catch (e) {
              if (countOut) m.messagesOut.add(1, outLabelsOf(m, parts!, 'failed'));
              throw e;
            } finally {
              inflight.leave('busHandlers');
            }
            return;
          }
          const data = msg.data as unknown as Partial<MessageEnvelope> | undefined;
          const carrier = msg.headers['traceparent']
            ? msg.headers
            : { traceparent: typeof data?.traceparent === 'string' ? data.traceparent : '' };
          const parent = propagation.extract(ROOT_CONTEXT, carrier);
          const span = tracer.startSpan(
            `${parts?.direction === 'egress' && opts?.queue ? 'egress' : 'consume'} ${parts?.direction ?? msg.subject}`,
            {
              kind: SpanKind.CONSUMER,
              attributes: {
                'messaging.system': system,
                'messaging.destination.name': msg.subject,
                'messaging.consumer.group.name': opts?.queue ?? '',
                'messaging.message.delivery_count': msg.deliveryCount,
                ...(typeof data?.id === 'string' ? { 'messaging.message.id': data.id } : {}),
                ...tenancyAttrs(parts),
              },
            },
            parent,
          );
          if (traceText && parts?.direction === 'ingress' && typeof data?.text === 'string') {
            span.setAttribute('greentic.message.text', data.text.slice(0, MAX_TRACED_TEXT));
          }
          // The processor parents its `message` span on this consume span: handed over with the
          // delivery (a copy, so other subscribers of the same delivery see the original).
          const delivered = { ...msg, traceContext: trace.setSpan(parent, span) };
          try {
            await handler(delivered);
            if (countOut) m.messagesOut.add(1, outLabelsOf(m, parts!, 'delivered'));
          } catch (e) {
            failSpan(span, e);
            if (countOut) m.messagesOut.add(1, outLabelsOf(m, parts!, 'failed'));
            throw e;
          } finally {
            span.end();
            inflight.leave('busHandlers');
          }
        },
        opts,
      );
  }

  private wrapProcessor(processor: MessageProcessor): void {
    const processMessage = processor.process.bind(processor);
    const m = this.m;
    const inflight = this.inflight;
    processor.process = async (
      env: MessageEnvelope,
      resolved: ResolvedChannel,
      parent?: Context,
    ): Promise<EgressMessage | null> => {
      inflight.enter('processing');
      const tenant = resolved.tenant.tenantId;
      const channel = resolved.channel.id;
      try {
        const out = await processMessage(env, resolved, parent);
        const outcome = out?.status ?? 'duplicate';
        m.messagesIn.add(
          1,
          m.labels.boundFor(resolved, outcome, () => ({ tenant, channel, outcome })),
        );
        return out;
      } catch (e) {
        m.messagesIn.add(
          1,
          m.labels.boundFor(resolved, 'error', () => ({ tenant, channel, outcome: 'error' })),
        );
        throw e;
      } finally {
        inflight.leave('processing');
      }
    };
  }

  private wrapExecutor(executor: FlowExecutorService): void {
    const run = executor.run.bind(executor);
    const m = this.m;
    executor.run = async (input: FlowRunInput): Promise<FlowRunResult> => {
      const result = await run(input);
      for (const n of result.trace) {
        m.nodeDuration.record(
          n.durationMs,
          m.labels.bound({
            tenant: input.tenant.tenantId,
            flow: input.flowId,
            node: n.nodeId,
            operation: n.operation,
            outcome: n.ok ? 'ok' : 'error',
          }),
        );
      }
      return result;
    };
  }

  private wrapSessionStore(store: SessionStore): void {
    const load = store.load.bind(store);
    const commit = store.commit.bind(store);
    const tracer = this.tracer;
    const m = this.m;
    const kind = store.kind;
    const timed = async <R>(operation: 'load' | 'commit', fn: () => Promise<R>): Promise<R> => {
      const t0 = performance.now();
      let outcome = 'ok';
      try {
        return await fn();
      } catch (e) {
        outcome = (e as { code?: string }).code === 'session_conflict' ? 'conflict' : 'error';
        throw e;
      } finally {
        m.sessionStoreDuration.record(
          performance.now() - t0,
          m.labels.boundFor(store, operation, () => ({ store: kind, operation, outcome }), outcome),
        );
      }
    };
    store.load = (tenant: TenantCtx, key: string) => timed('load', () => load(tenant, key));
    const tracing = telemetry()?.tracing ?? false;
    const tracedCommit = async (
      tenant: TenantCtx,
      record: SessionRecord,
      expectedVersion: number,
      ttlSeconds: number,
      parent: Context,
      options: CommitOptions | undefined,
    ): Promise<number> => {
      const span = tracer.startSpan(
        'session commit',
        {
          attributes: {
            'greentic.tenant': tenant.tenantId,
            'greentic.env': tenant.envId,
            'greentic.session.store': kind,
            'greentic.session.version': expectedVersion + 1,
          },
        },
        parent,
      );
      try {
        return await timed('commit', () =>
          commit(tenant, record, expectedVersion, ttlSeconds, parent, options),
        );
      } catch (e) {
        failSpan(span, e);
        throw e;
      } finally {
        span.end();
      }
    };
    store.commit = (
      tenant: TenantCtx,
      record: SessionRecord,
      expectedVersion: number,
      ttlSeconds: number,
      traceContext?: Context,
      options?: CommitOptions,
    ) =>
      !tracing
        ? timed('commit', () => commit(tenant, record, expectedVersion, ttlSeconds, traceContext, options))
        : tracedCommit(
            tenant,
            record,
            expectedVersion,
            ttlSeconds,
            traceContext ?? context.active(),
            options,
          );
  }

  private wrapRuntime(runtime: ComponentRuntime): void {
    const invoke = runtime.invoke.bind(runtime);
    const tracer = this.tracer;
    const m = this.m;
    const tracing = telemetry()?.tracing ?? false;
    const measured = async (tenant: TenantCtx, call: ComponentCall, span?: Span) => {
      const t0 = performance.now();
      let outcome = 'ok';
      const labels = { tenant: tenant.tenantId, component: call.component.name };
      const name = call.component.name;
      try {
        return await invoke(tenant, call);
      } catch (e) {
        outcome = 'error';
        if (e instanceof ComponentTimeoutError) {
          outcome = 'timeout';
          m.componentTimeouts.add(1, m.labels.bound(labels));
        } else if (e instanceof ComponentMemoryExceededError) {
          outcome = 'memory';
          m.componentMemoryKills.add(1, m.labels.bound(labels));
        }
        if (span) failSpan(span, e);
        throw e;
      } finally {
        m.componentDuration.record(
          performance.now() - t0,
          m.labels.boundFor(
            tenant,
            name,
            () => ({ tenant: tenant.tenantId, component: name, outcome }),
            outcome,
          ),
        );
        span?.end();
      }
    };
    const tracedInvoke = (tenant: TenantCtx, call: ComponentCall) => {
      const parent = call.traceContext ?? context.active();
      const span = tracer.startSpan(
        `component ${call.component.name}`,
        {
          attributes: {
            'greentic.tenant': tenant.tenantId,
            'greentic.env': tenant.envId,
            ...(tenant.teamId !== undefined ? { 'greentic.team': tenant.teamId } : {}),
            'greentic.flow': call.ctx.flowId,
            'greentic.node': call.ctx.nodeId,
            'greentic.component': call.component.name,
            'greentic.component.version': call.component.version,
            'greentic.operation': call.operation,
          },
        },
        parent,
      );
      // The runtime sees the component span as the call's context (its log lines become events).
      return measured(tenant, { ...call, traceContext: trace.setSpan(parent, span) }, span);
    };
    runtime.invoke = (tenant: TenantCtx, call: ComponentCall) =>
      !tracing ? measured(tenant, call) : tracedInvoke(tenant, call);
    if (runtime.stats) {
      const stats = (): Record<string, unknown> => runtime.stats?.() ?? {};
      this.m.gauge('greentic_component_instances', 'Live component instances, by tenant').addCallback((r) => {
        const s = stats();
        const per = s['instancesPerTenant'];
        if (per && typeof per === 'object') {
          for (const [key, n] of Object.entries(per as Record<string, unknown>)) {
            if (typeof n === 'number')
              r.observe(n, this.m.labels.bound({ tenant: key.split('/')[0] ?? key }));
          }
        }
      });
      this.m
        .gauge('greentic_component_pool_size', 'Component worker threads running (all tenants)')
        .addCallback((r) => {
          const n = stats()['poolSize'];
          if (typeof n === 'number') r.observe(n);
        });
      this.m
        .gauge('greentic_component_queue_depth', 'Component calls waiting for a free instance')
        .addCallback((r) => {
          const s = stats();
          const q = s['queueDepth'] ?? s['queued'] ?? s['pending'];
          r.observe(typeof q === 'number' ? q : 0);
        });
    }
  }

  /**
   * Every reload path (admin, watcher poll, filesystem event) funnels through the registry's
   * per-pack `refresh`; counted once packs are ready, so the start-up load is not a reload, and
   * a watcher poll that found nothing new is not either.
   */
  private wrapPacks(packs: PackRegistry): void {
    const m = this.m;
    type Refresh = (
      t: { id: string },
      binding: { id: string },
      opts: { force: boolean },
    ) => Promise<ReloadResult>;
    const target = packs as unknown as { refresh?: Refresh };
    if (typeof target.refresh === 'function') {
      const refresh = target.refresh.bind(packs);
      target.refresh = async (t, binding, opts) => {
        const r = await refresh(t, binding, opts);
        if (packs.ready && (opts.force || r.outcome !== 'unchanged')) {
          m.packReloads.add(1, m.labels.bound({ tenant: r.tenant, pack: r.pack, outcome: r.outcome }));
        }
        return r;
      };
      return;
    }
    const reload = packs.reload.bind(packs);
    packs.reload = async (...args: Parameters<PackRegistry['reload']>): Promise<ReloadResult[]> => {
      const results = await reload(...args);
      for (const r of results)
        m.packReloads.add(1, m.labels.bound({ tenant: r.tenant, pack: r.pack, outcome: r.outcome }));
      return results;
    };
  }

  private observeSecrets(secrets: SecretsService): void {
    const counter = this.m.metrics.getObservableCounter('greentic_secrets_reads', {
      description: 'Secret reads by tenant, backend and result (hit, fetch, stale, error)',
    });
    counter.addCallback((r) => {
      for (const s of secrets.status()) {
        const base = { tenant: s.tenant, backend: s.backend };
        r.observe(s.cache.hits, this.m.labels.bound({ ...base, result: 'hit' }));
        r.observe(s.cache.fetches, this.m.labels.bound({ ...base, result: 'fetch' }));
        r.observe(s.cache.staleServed, this.m.labels.bound({ ...base, result: 'stale' }));
        r.observe(s.cache.errors, this.m.labels.bound({ ...base, result: 'error' }));
      }
    });
  }
}

function outLabels(
  parts: NonNullable<ReturnType<typeof parseSubject>>,
  outcome: 'delivered' | 'failed',
): Record<string, string> {
  return { tenant: parts.tenant, channel: parts.channel, outcome };
}

/** Parsed subjects are one object per subject (parseSubject), so label sets are bound per subject. */
const OTHER_SUBJECT = {};

function lagLabels(m: RunnerMetrics, parts: ReturnType<typeof parseSubject>): Attributes {
  return m.labels.boundFor(parts ?? OTHER_SUBJECT, 'lag', () => ({ direction: parts?.direction ?? 'other' }));
}

function outLabelsOf(
  m: RunnerMetrics,
  parts: NonNullable<ReturnType<typeof parseSubject>>,
  outcome: 'delivered' | 'failed',
): Attributes {
  return m.labels.boundFor(parts, outcome, () => outLabels(parts, outcome));
}

function tenancyAttrs(parts: ReturnType<typeof parseSubject>): Record<string, string> {
  if (!parts) return {};
  return {
    'greentic.tenant': parts.tenant,
    'greentic.env': parts.env,
    'greentic.team': parts.team,
    'greentic.channel': parts.channel,
  };
}
