import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import {
  Inject,
  Injectable,
  Logger,
  Optional,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { SpanStatusCode, trace, type Counter } from '@opentelemetry/api';
import { RunnerConfig } from '../config/runner-config.js';
import { IngressService } from '../messaging/ingress.service.js';
import { MessageProcessor } from '../messaging/message-processor.service.js';
import { MetricService } from 'nestjs-otel';
import { LabelGuard } from '../common/label-guard.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { TenantScopes } from '../tenancy/tenant-scopes.service.js';
import type { TimerBinding } from '../tenancy/bundle.types.js';
import { TICK_LEDGER, type TickLedger } from './tick-ledger.js';
import { TimerLoop, type PendingTick, type TickOutcome } from './timer-loop.js';

/** The message id of a tick: the same on every replica, so the session store's idempotency sees one. */
export function tickMessageId(timer: TimerBinding, tick: number): string {
  return `timer:${timer.id}:${new Date(tick).toISOString()}`;
}

/**
 * Fires the bundle's timers. A tick is claimed in the tick ledger (Redis when several replicas
 * share the work) and run by the claiming replica through its tenant's MessageProcessor, like any inbound
 * message: the timer's channel (provider `timer`) resolved by BundleRegistry, one session per
 * timer (so ticks of a timer never overlap and `session.*` carries state from tick to tick), the
 * same executor, spans and metrics, egress to the timer provider. Running it here rather than
 * publishing it on the ingress subject means the claimant knows when the tick is done, so its
 * lease can cover the whole run and a replica that dies mid-tick is replaced by the next claimant.
 */
@Injectable()
export class TimerScheduler implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly logger = new Logger(TimerScheduler.name);
  private readonly tracer = trace.getTracer('greentic-runner');
  private readonly loops: TimerLoop[] = [];
  /** This replica, as named in tick claims and logs. */
  readonly owner = `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private readonly ticks?: Counter;
  private readonly labels = new LabelGuard();

  constructor(
    private readonly registry: BundleRegistry,
    private readonly ingress: IngressService,
    private readonly scopes: TenantScopes,
    @Inject(TICK_LEDGER) private readonly ledger: TickLedger,
    private readonly config: RunnerConfig,
    @Optional() metrics?: MetricService,
  ) {
    this.ticks = metrics?.getCounter('greentic_timer_ticks', {
      description:
        'Timer ticks by tenant, timer and outcome (run, failed, duplicate, missed, fenced, gave_up)',
    });
  }

  timers(): TimerBinding[] {
    const out: TimerBinding[] = [];
    for (const t of this.registry.tenants())
      for (const env of t.envs.values()) for (const timer of env.timers?.values() ?? []) out.push(timer);
    return out;
  }

  async onApplicationBootstrap(): Promise<void> {
    const timers = this.timers();
    if (timers.length === 0) return;
    if (this.config.GREENTIC_TIMERS === 'off') {
      this.logger.log({ timers: timers.length }, 'timers are off on this replica (GREENTIC_TIMERS=off)');
      return;
    }
    for (const timer of timers) {
      const loop = new TimerLoop(timer, {
        ledger: this.ledger,
        run: (t, p, fence) => this.runTick(t, p, fence),
        owner: this.owner,
        leaseMs: this.config.GREENTIC_TIMER_LEASE_MS,
        logger: this.logger,
        onOutcome: (t, outcome) => this.count(t, outcome),
      });
      await loop.start();
      this.loops.push(loop);
    }
    this.logger.log(
      {
        timers: timers.map((t) => `${t.tenant}/${t.env}/${t.id}`),
        ledger: this.ledger.kind,
        replica: this.owner,
      },
      'timers started',
    );
  }

  async onModuleDestroy(): Promise<void> {
    await Promise.all(this.loops.splice(0).map((l) => l.stop()));
    await this.ledger.close();
  }

  /** One tick through the message path. Throws for infrastructure trouble (the loop retries). */
  async runTick(timer: TimerBinding, p: PendingTick, fence: number): Promise<'run' | 'failed' | 'duplicate'> {
    const resolved = this.registry.resolveChannel({
      tenant: timer.tenant,
      env: timer.env,
      team: timer.team,
      channel: timer.id,
    });
    const scheduledAt = new Date(p.tick).toISOString();
    const id = tickMessageId(timer, p.tick);
    const attributes = {
      'greentic.tenant': timer.tenant,
      'greentic.env': timer.env,
      'greentic.timer': timer.id,
      'greentic.timer.tick': scheduledAt,
      'greentic.timer.fence': fence,
      'greentic.timer.catch_up': p.catchUp,
    };
    return this.tracer.startActiveSpan('timer tick', { attributes }, async (span) => {
      try {
        const envelope = this.ingress.envelope(resolved, {
          id,
          conversationId: timer.id,
          userId: 'timer',
          text: '',
          action: {
            tick: {
              id,
              timer: timer.id,
              scheduledAt,
              firedAt: new Date().toISOString(),
              fence,
              replica: this.owner,
              catchUp: p.catchUp,
            },
            input: timer.input,
          },
          timestamp: scheduledAt,
        });
        const processor = await this.scopes.get(resolved.tenant, MessageProcessor);
        const out = await processor.process(envelope, resolved);
        const outcome = out === null ? 'duplicate' : out.status === 'failed' ? 'failed' : 'run';
        span.setAttribute('greentic.outcome', outcome);
        return outcome;
      } catch (e) {
        span.recordException(e instanceof Error ? e : new Error(String(e)));
        span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
        throw e;
      } finally {
        span.end();
      }
    });
  }

  private count(t: TimerBinding, outcome: TickOutcome): void {
    this.ticks?.add(1, this.labels.bound({ tenant: t.tenant, timer: `${t.env}/${t.id}`, outcome }));
  }
}
