/**
 * The workers of one tenant, its bounded queue and its limits. Instances live only in this
 * tenant's workers, so no instance (and no linear memory) is ever reachable from another tenant's
 * call; a loop or a memory bomb costs this tenant a worker, never another tenant a turn.
 *
 * Dispatch: an idle worker first (the lowest-numbered, so sequential calls keep hitting the same
 * warm instance); when every worker is busy, one more is started (up to maxWorkers) and the call
 * is pipelined onto the least-loaded worker with a free slot; when every slot is taken the call
 * waits in the queue, and past the queue it fails at once with ComponentBusy.
 */
import { Logger } from '@nestjs/common';
import {
  ComponentBusyError,
  ComponentError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  ComponentTrapError,
  type GreenticError,
} from '../../common/errors.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';
import type { ComponentOperation } from '../../core/component-runtime.js';
import type { HostCallScope, HostCalls } from '../host/host-calls.js';
import type { ComponentLoader, LoadedComponent } from './component-loader.js';
import { PoolWorker, type DeathReason, type PendingRequest, type PoolWorkerHooks } from './pool-worker.js';
import { workerHeapMb, type PoolSettings } from './pool-settings.js';
import {
  fromWireError,
  type CallRequest,
  type DescribeRequest,
  type LoadRequest,
  type WorkerResult,
} from './protocol.js';

/**
 * Calls shorter than this (their worker's moving average) are pipelined onto a busy worker rather
 * than handed to an idle one: waiting behind them costs less than a wake-up.
 */
const SHORT_CALL_MS = 0.25;

/** One call (or describe) as the pool tracks it. */
export interface PoolJob {
  id: number;
  tenant: TenantCtx;
  tenantKey: string;
  component: LoadedComponent;
  /** Name the caller knows the component by (a digest may be prepared under several names). */
  name: string;
  operation: string;
  request: CallRequest | DescribeRequest;
  deadlineMs: number;
  deadlineAt: number;
  scope?: HostCallScope;
  /** Times the job was handed back because its worker died before starting it. */
  orphanings: number;
  resolve(value: unknown): void;
  reject(error: Error): void;
}

export type KillKind = 'timeout' | 'memory' | 'crash';

export interface TenantPoolEvents {
  /** A worker was stopped for a component's behaviour (metrics, logs). */
  killed?(tenantId: string, kind: KillKind, component: string | undefined): void;
  busy?(tenantId: string): void;
}

export interface TenantPoolStats {
  settings: PoolSettings;
  workers: number;
  workersStarting: number;
  inflight: number;
  queued: number;
  calls: number;
  failures: number;
  traps: number;
  timeouts: number;
  memoryKills: number;
  crashes: number;
  busyRejections: number;
  workerStarts: number;
  instances: Record<string, number>;
}

interface JobPending extends PendingRequest {
  job?: PoolJob;
}

const MAX_ORPHANINGS = 3;
/** Startup failures in a row after which queued calls fail instead of waiting for a worker. */
const MAX_START_FAILURES = 3;

let nextWorkerId = 1;

export class TenantPool {
  private readonly logger = new Logger('ComponentPool');
  private readonly workers: PoolWorker[] = [];
  private queue: PoolJob[] = [];
  private readonly loads = new Map<string, LoadRequest>();
  private readonly loading = new Map<string, Promise<LoadRequest>>();
  private readonly counters = {
    calls: 0,
    failures: 0,
    traps: 0,
    timeouts: 0,
    memoryKills: 0,
    crashes: 0,
    busyRejections: 0,
    workerStarts: 0,
  };
  private queueTimer: NodeJS.Timeout | undefined;
  private queueTimerAt = Infinity;
  private readonly reaper: NodeJS.Timeout;
  private startFailures = 0;
  private closed = false;
  private readonly hooks: PoolWorkerHooks;

  constructor(
    readonly tenantId: string,
    readonly settings: PoolSettings,
    private readonly loader: ComponentLoader,
    private readonly hostCalls: HostCalls,
    private readonly events: TenantPoolEvents = {},
  ) {
    this.hooks = {
      hostCall: (_w, pending, call) =>
        this.hostCalls.handle((pending as JobPending | undefined)?.job?.scope, call),
      timeoutError: (pending, running) => this.timeoutError((pending as JobPending).job, running),
      deathError: (reason, pending) => this.deathError(reason, (pending as JobPending).job),
      died: (worker, reason, orphans) => this.onDeath(worker, reason, orphans as JobPending[]),
      freed: () => this.pump(),
    };
    const every = Math.max(250, Math.min(settings.idleMs / 2, 15_000));
    this.reaper = setInterval(() => this.reap(), every);
    this.reaper.unref();
  }

  get capacity(): number {
    return this.settings.maxWorkers * this.settings.pipeline;
  }

  /** Runs a job: now, after the queue, or fails it with ComponentBusy. */
  submit(job: PoolJob): void {
    if (this.closed) {
      job.reject(new ComponentError('component_runtime_closed', 'the component pool is shutting down', 503));
      return;
    }
    const load = this.loads.get(job.component.digest);
    if (!load) {
      this.loadFor(job.component).then(
        () => this.submit(job),
        (e: unknown) => job.reject(e as Error),
      );
      return;
    }
    if (this.queue.length === 0 && this.dispatch(job, load)) return;
    if (this.queue.length >= this.settings.queueSize) {
      this.counters.busyRejections++;
      this.events.busy?.(this.tenantId);
      job.reject(
        new ComponentBusyError(
          `tenant '${this.tenantId}' has ${this.inflight()} component calls in flight and ${this.queue.length} queued ` +
            `(${this.settings.maxWorkers} workers × ${this.settings.pipeline}, queue ${this.settings.queueSize}); try again later`,
          { tenant: this.tenantId, component: job.name, operation: job.operation, queued: this.queue.length },
        ),
      );
      return;
    }
    this.queue.push(job);
    this.armQueueTimer(job.deadlineAt);
    if (this.workers.length === 0) this.spawn();
  }

  /**
   * Starts the tenant's minimum of workers and loads `components` into them (bindings imported,
   * core modules received), so the tenant's first call does not wait for a worker to boot.
   * Resolves when every load has answered.
   */
  async warm(components: LoadedComponent[]): Promise<void> {
    if (this.closed || this.settings.minWorkers === 0 || components.length === 0) return;
    while (this.workers.length < this.settings.minWorkers && this.spawn()) {
      // spawn() adds the worker
    }
    const loads = await Promise.all(components.map((c) => this.loadFor(c)));
    const answered: Array<Promise<void>> = [];
    for (const w of this.workers) {
      if (!w.available) continue;
      for (const load of loads) {
        if (w.loaded.has(load.digest)) continue;
        w.loaded.add(load.digest);
        answered.push(
          new Promise<void>((resolve) =>
            w.send(load, {
              seq: 0,
              callId: 0,
              deadlineAt: Infinity,
              deadlineMs: Infinity,
              settle: () => resolve(),
            }),
          ),
        );
      }
    }
    await Promise.all(answered);
  }

  /** Drops the instances of one tenant/env/team in every worker (pack reload). */
  drop(tenantKey: string): void {
    const prefix = `${tenantKey}\u0000`;
    for (const w of this.workers) {
      if (!w.available) continue;
      w.send(
        { k: 'drop', tk: tenantKey },
        { seq: 0, callId: 0, deadlineAt: Infinity, deadlineMs: Infinity, settle: () => undefined },
      );
      for (const key of [...w.instances]) if (key.startsWith(prefix)) w.instances.delete(key);
    }
  }

  /** Stops taking work; returns the queued jobs (for a successor pool). Busy workers finish first. */
  retire(): PoolJob[] {
    this.closed = true;
    clearInterval(this.reaper);
    if (this.queueTimer) clearTimeout(this.queueTimer);
    const queued = this.queue;
    this.queue = [];
    for (const w of [...this.workers]) {
      if (w.load === 0) w.terminate({ kind: 'retired' });
      else w.retiring = true;
    }
    return queued;
  }

  close(): void {
    const queued = this.retire();
    for (const job of queued) {
      job.reject(new ComponentError('component_runtime_closed', 'the component pool is shutting down', 503));
    }
    for (const w of [...this.workers]) w.terminate({ kind: 'retired' });
  }

  stats(): TenantPoolStats {
    const instances: Record<string, number> = {};
    for (const w of this.workers) {
      for (const key of w.instances) {
        const tk = key.slice(0, key.indexOf('\u0000'));
        instances[tk] = (instances[tk] ?? 0) + 1;
      }
    }
    return {
      settings: { ...this.settings },
      workers: this.workers.length,
      workersStarting: this.workers.filter((w) => !w.ready).length,
      inflight: this.inflight(),
      queued: this.queue.length,
      ...this.counters,
      instances,
    };
  }

  // ---- dispatch -----------------------------------------------------------------------------

  private inflight(): number {
    let n = 0;
    for (const w of this.workers) n += w.load;
    return n;
  }

  private loadFor(component: LoadedComponent): Promise<LoadRequest> {
    let pending = this.loading.get(component.digest);
    if (!pending) {
      pending = this.loader.loadRequest(component, this.settings.memoryMb * 1024 * 1024).then((req) => {
        this.loads.set(component.digest, req);
        this.loading.delete(component.digest);
        return req;
      });
      pending.catch(() => this.loading.delete(component.digest));
      this.loading.set(component.digest, pending);
    }
    return pending;
  }

  private dispatch(job: PoolJob, load: LoadRequest): boolean {
    let best: PoolWorker | undefined;
    let bestCalls = Infinity;
    for (const w of this.workers) {
      if (!w.available) continue;
      const n = w.callsInFlight;
      if (n >= this.settings.pipeline) continue;
      // A worker that is running short calls is awake: the call joins its pipeline and is taken
      // as soon as the one before it returns, where an idle worker sleeps and must be woken (a
      // futex wake-up, which costs the main thread more than a short call takes).
      if (n > 0 && w.ready && w.averageCallMs > 0 && w.averageCallMs < SHORT_CALL_MS) {
        best = w;
        bestCalls = 0;
        break;
      }
      if (n === 0 && w.ready) {
        best = w;
        bestCalls = 0;
        break;
      }
      if (n < bestCalls) {
        best = w;
        bestCalls = n;
      }
    }
    // Every worker is running a call: one more worker (up to the max) shares the load.
    if (bestCalls > 0 && this.workers.every((w) => w.callsInFlight > 0 || !w.available)) {
      const fresh = this.spawn();
      if (fresh) best = fresh;
    }
    if (!best) return false;
    this.send(best, job, load);
    return true;
  }

  private send(worker: PoolWorker, job: PoolJob, load: LoadRequest): void {
    const digest = job.component.digest;
    if (!worker.loaded.has(digest)) {
      worker.loaded.add(digest);
      worker.send(load, {
        seq: 0,
        callId: 0,
        deadlineAt: Infinity,
        deadlineMs: Infinity,
        settle: () => undefined,
      });
    }
    const pending: JobPending = {
      seq: 0,
      callId: job.id,
      deadlineAt: job.deadlineAt,
      deadlineMs: job.deadlineMs,
      job,
      settle: (result, error) => this.settle(worker, job, result, error),
    };
    this.counters.calls++;
    worker.send(job.request, pending);
  }

  private settle(
    worker: PoolWorker,
    job: PoolJob,
    result: WorkerResult | undefined,
    error?: GreenticError,
  ): void {
    if (error) {
      this.counters.failures++;
      job.reject(error);
      return;
    }
    if (!result) return;
    const instanceKey = `${job.tenantKey}\u0000${job.component.digest}`;
    if (result.ok) {
      if (job.request.k === 'call') worker.instances.add(instanceKey);
      job.resolve('operations' in result ? result.operations : result.value);
      return;
    }
    this.counters.failures++;
    const err = fromWireError(result.error);
    if (err instanceof ComponentTrapError || err instanceof ComponentMemoryExceededError) {
      worker.instances.delete(instanceKey);
      if (err instanceof ComponentTrapError) this.counters.traps++;
    }
    if (err instanceof ComponentMemoryExceededError) {
      this.counters.memoryKills++;
      this.events.killed?.(this.tenantId, 'memory', job.name);
      this.logger.warn(
        { tenant: this.tenantId, tenantKey: job.tenantKey, component: job.name, operation: job.operation },
        err.message,
      );
    }
    job.reject(err);
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const job = this.queue[0]!;
      const load = this.loads.get(job.component.digest);
      if (!load || !this.dispatch(job, load)) return;
      this.queue.shift();
    }
  }

  private spawn(): PoolWorker | undefined {
    if (this.closed || this.workers.length >= this.settings.maxWorkers) return undefined;
    const worker = new PoolWorker({
      id: nextWorkerId++,
      tenantId: this.tenantId,
      channel: this.settings.channel,
      memoryCapBytes: this.settings.memoryMb * 1024 * 1024,
      heapMb: workerHeapMb(this.settings),
      spinUs: this.settings.spinUs,
      mainSpinUs: this.settings.mainSpinUs,
      slots: this.settings.pipeline,
      hooks: this.hooks,
    });
    this.counters.workerStarts++;
    this.workers.push(worker);
    return worker;
  }

  // ---- deadlines and deaths ----------------------------------------------------------------

  private timeoutError(job: PoolJob | undefined, running: boolean): GreenticError {
    if (!job)
      return new ComponentTimeoutError('a component request passed its deadline', { tenant: this.tenantId });
    const what = `component '${job.name}' operation '${job.operation}' for tenant '${job.tenantKey}'`;
    const message = running
      ? `${what} did not finish within its deadline of ${job.deadlineMs} ms; its worker was stopped and replaced`
      : `${what} did not start within its deadline of ${job.deadlineMs} ms (it waited behind other calls)`;
    return new ComponentTimeoutError(message, {
      tenant: job.tenantKey,
      component: job.name,
      operation: job.operation,
      deadlineMs: job.deadlineMs,
    });
  }

  private deathError(reason: DeathReason, job: PoolJob | undefined): GreenticError {
    const who = job
      ? `component '${job.name}' operation '${job.operation}' for tenant '${job.tenantKey}'`
      : `a component request of tenant '${this.tenantId}'`;
    const details = job ? { tenant: job.tenantKey, component: job.name, operation: job.operation } : {};
    switch (reason.kind) {
      case 'timeout':
        return this.timeoutError(job, true);
      case 'memory':
        return new ComponentMemoryExceededError(
          `${who} was stopped with its worker: an instance went past its memory cap`,
          details,
        );
      case 'crash':
        if (reason.outOfMemory) {
          return new ComponentMemoryExceededError(
            `${who}: its worker ran out of JS heap (${workerHeapMb(this.settings)} MiB) and was replaced`,
            details,
          );
        }
        return new ComponentTrapError(
          `${who}: its worker stopped unexpectedly (${reason.error}) and was replaced`,
          details,
        );
      case 'retired':
        return new ComponentError(
          'component_runtime_closed',
          `${who} was stopped: the component pool is shutting down`,
          503,
          details,
        );
    }
  }

  private onDeath(worker: PoolWorker, reason: DeathReason, orphans: JobPending[]): void {
    const at = this.workers.indexOf(worker);
    if (at >= 0) this.workers.splice(at, 1);
    const job = reason.kind === 'timeout' ? (reason.request as JobPending).job : undefined;
    switch (reason.kind) {
      case 'timeout':
        this.counters.timeouts++;
        this.events.killed?.(this.tenantId, 'timeout', job?.name);
        this.logger.warn(
          {
            tenant: this.tenantId,
            tenantKey: job?.tenantKey,
            component: job?.name,
            operation: job?.operation,
            deadlineMs: job?.deadlineMs,
          },
          'component call passed its deadline: worker stopped and replaced',
        );
        break;
      case 'memory':
        // Counted (and logged) with the call that reported it.
        break;
      case 'crash':
        if (reason.outOfMemory) {
          this.counters.memoryKills++;
          this.events.killed?.(this.tenantId, 'memory', undefined);
        } else {
          this.counters.crashes++;
          this.events.killed?.(this.tenantId, 'crash', undefined);
        }
        if (!worker.ready) this.startFailures++;
        this.logger.warn(
          { tenant: this.tenantId, worker: worker.id, error: reason.error },
          'component worker died',
        );
        break;
      case 'retired':
        break;
    }
    if (worker.ready) this.startFailures = 0;
    const requeue: PoolJob[] = [];
    const now = performance.now();
    for (const p of orphans) {
      const orphan = p.job;
      if (!orphan) {
        // A load or drop: nothing to re-run (the replacement loads what it needs).
        p.settle(undefined, this.deathError(reason, undefined));
        continue;
      }
      if (orphan.deadlineAt <= now) {
        // Its caller's deadline passed while it waited behind the call that was stopped.
        this.counters.failures++;
        orphan.reject(this.timeoutError(orphan, false));
      } else if (++orphan.orphanings > MAX_ORPHANINGS || this.closed) {
        orphan.reject(this.deathError(reason, orphan));
      } else {
        requeue.push(orphan);
      }
    }
    if (this.closed) return;
    this.queue = [...requeue, ...this.queue];
    if (this.startFailures >= MAX_START_FAILURES) {
      const failed = this.queue;
      this.queue = [];
      for (const j of failed) {
        j.reject(
          new ComponentTrapError(`component workers of tenant '${this.tenantId}' fail to start`, {
            tenant: this.tenantId,
            component: j.name,
          }),
        );
      }
      this.startFailures = 0;
      return;
    }
    // Replace the worker right away when the tenant keeps a minimum or has work waiting; the
    // replacement loads the components the old one had, so the next call only instantiates.
    if (this.workers.length < this.settings.minWorkers || this.queue.length > 0) {
      const fresh = this.spawn();
      if (fresh) {
        for (const digest of worker.loaded) {
          const load = this.loads.get(digest);
          if (!load) continue;
          fresh.loaded.add(digest);
          fresh.send(load, {
            seq: 0,
            callId: 0,
            deadlineAt: Infinity,
            deadlineMs: Infinity,
            settle: () => undefined,
          });
        }
      }
    }
    this.pump();
  }

  private armQueueTimer(at: number): void {
    if (at >= this.queueTimerAt) return;
    if (this.queueTimer) clearTimeout(this.queueTimer);
    this.queueTimerAt = at;
    this.queueTimer = setTimeout(() => this.expireQueued(), Math.max(0, at - performance.now()));
    this.queueTimer.unref();
  }

  private expireQueued(): void {
    this.queueTimer = undefined;
    this.queueTimerAt = Infinity;
    const now = performance.now();
    const keep: PoolJob[] = [];
    let next = Infinity;
    for (const job of this.queue) {
      if (job.deadlineAt <= now + 0.5) {
        this.counters.failures++;
        job.reject(this.timeoutError(job, false));
      } else {
        keep.push(job);
        next = Math.min(next, job.deadlineAt);
      }
    }
    this.queue = keep;
    if (next < Infinity) this.armQueueTimer(next);
  }

  private reap(): void {
    const now = performance.now();
    for (const w of [...this.workers]) {
      if (this.workers.length <= this.settings.minWorkers) return;
      if (w.available && w.load === 0 && now - w.lastActiveAt > this.settings.idleMs) {
        w.terminate({ kind: 'retired' });
      }
    }
  }

  /** Operations of a 0.6 component, from describe() in a scratch instance (prepare). */
  static describeJob(
    id: number,
    component: LoadedComponent,
    deadlineMs: number,
    resolve: (ops: ComponentOperation[]) => void,
    reject: (e: Error) => void,
  ): PoolJob {
    const tenant: TenantCtx = { tenantId: '#prepare', envId: '-' };
    return {
      id,
      tenant,
      tenantKey: '#prepare',
      component,
      name: component.name,
      operation: 'describe',
      request: { k: 'describe', id, d: component.digest },
      deadlineMs,
      deadlineAt: performance.now() + deadlineMs,
      orphanings: 0,
      resolve: (v) => resolve(v as ComponentOperation[]),
      reject,
    };
  }
}
