import { Inject, Injectable, Logger } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { InflightWork } from '../messaging/inflight-work.js';
import { PackRegistry } from '../packs/pack-registry.service.js';
import { unresolvedSecretRefs } from '../secrets/channel-secret-refs.js';
import { SecretsService } from '../secrets/secrets.service.js';
import { SESSION_STORE, type SessionStore } from '../core/session-store.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';

export type LifecycleState = 'running' | 'draining' | 'stopped';

export interface DrainResult {
  drained: boolean;
  waitedMs: number;
  /** What was still in flight when the timeout cut the wait short. */
  remaining: { http: number; processing: number; busHandlers: number };
}

/**
 * Readiness and graceful shutdown. Ready means: not draining, packs loaded, bus and session store
 * answering, every channel's `secret_refs` resolving. Draining stops new webhooks (503 +
 * Retry-After), lets the work already accepted run to its reply, and reports when nothing is left
 * in flight.
 */
@Injectable()
export class LifecycleService {
  private readonly logger = new Logger(LifecycleService.name);
  private stateValue: LifecycleState = 'running';
  /** Webhook requests being handled (a waiting caller stays here until its reply). */
  httpInFlight = 0;
  /** Unresolved secret refs last reported, so the log says when the set changes, not every probe. */
  private lastSecretProblems = '';

  constructor(
    private readonly work: InflightWork,
    @Inject(MESSAGE_BUS) private readonly bus: MessageBus,
    @Inject(SESSION_STORE) private readonly sessions: SessionStore,
    private readonly packs: PackRegistry,
    private readonly bundles: BundleRegistry,
    private readonly secrets: SecretsService,
  ) {}

  get state(): LifecycleState {
    return this.stateValue;
  }

  get draining(): boolean {
    return this.stateValue !== 'running';
  }

  async readiness(): Promise<{
    ready: boolean;
    checks: Record<string, { up: boolean; details?: Record<string, unknown> }>;
  }> {
    const [bus, sessions, unresolved] = await Promise.all([
      this.bus.health().catch((e: unknown) => ({ up: false, details: { error: (e as Error).message } })),
      this.sessions.health().catch((e: unknown) => ({ up: false, details: { error: (e as Error).message } })),
      unresolvedSecretRefs(this.bundles, this.secrets),
    ]);
    this.logSecretProblems(unresolved.map((u) => ({ tenant: u.tenant, message: u.message })));
    const checks = {
      lifecycle: { up: !this.draining, details: { state: this.stateValue } },
      packs: { up: this.packs.ready },
      bus: { up: bus.up, details: { kind: this.bus.kind } },
      sessions: { up: sessions.up, details: { kind: this.sessions.kind } },
      // A channel whose provider secret does not resolve answers 500 to every message it gets.
      secrets: {
        up: unresolved.length === 0,
        ...(unresolved.length > 0
          ? {
              details: {
                unresolved: unresolved.map(({ message: _m, ...u }) => u),
                messages: unresolved.map((u) => u.message),
              },
            }
          : {}),
      },
    };
    return { ready: Object.values(checks).every((c) => c.up), checks };
  }

  private logSecretProblems(problems: { tenant: string; message: string }[]): void {
    const key = problems.map((p) => p.message).join('\n');
    if (key === this.lastSecretProblems) return;
    this.lastSecretProblems = key;
    for (const p of problems) this.logger.warn({ tenant: p.tenant }, `not ready: ${p.message}`);
    if (problems.length === 0) this.logger.log('every channel secret resolves again');
  }

  inflight(): DrainResult['remaining'] {
    const w = this.work;
    return { http: this.httpInFlight, processing: w.processing, busHandlers: w.busHandlers };
  }

  /**
   * Stops taking new work and waits, up to `timeoutMs`, until no webhook, message or bus handler
   * is in flight. With a durable bus (NATS) the ingress consumers stop first: messages not yet
   * taken stay in the stream for the other replicas. With the in-process bus they keep running
   * until idle, since whatever it holds exists nowhere else.
   */
  async drain(app: INestApplication, timeoutMs: number): Promise<DrainResult> {
    const t0 = Date.now();
    this.stateValue = 'draining';
    this.logger.log(
      { timeoutMs, inflight: this.inflight(), bus: this.bus.kind },
      'draining: new webhooks refused, finishing accepted work',
    );
    const durableBus = this.bus.kind !== 'memory';
    if (durableBus) await this.closeIngress(app);
    const idle = (): boolean => {
      const r = this.inflight();
      return r.http === 0 && r.processing === 0 && r.busHandlers === 0;
    };
    // Idle must hold across two checks a tick apart: a reply being delivered publishes the next
    // step (egress) between one handler ending and the next starting.
    let stableSince = idle() ? Date.now() : 0;
    while (Date.now() - t0 < timeoutMs) {
      if (idle()) {
        if (stableSince && Date.now() - stableSince >= 20) break;
        if (!stableSince) stableSince = Date.now();
      } else stableSince = 0;
      await new Promise((r) => setTimeout(r, 5));
    }
    const drained = idle();
    if (!durableBus) await this.closeIngress(app);
    const result = { drained, waitedMs: Date.now() - t0, remaining: this.inflight() };
    if (drained) this.logger.log(result, 'drained: nothing left in flight');
    else
      this.logger.error(
        result,
        'drain timed out: work still in flight is abandoned (a durable bus redelivers it)',
      );
    this.stateValue = 'stopped';
    return result;
  }

  private async closeIngress(app: INestApplication): Promise<void> {
    for (const ms of app.getMicroservices()) {
      await ms
        .close()
        .catch((e: unknown) =>
          this.logger.warn({ err: (e as Error).message }, 'closing a bus consumer failed'),
        );
    }
  }
}
