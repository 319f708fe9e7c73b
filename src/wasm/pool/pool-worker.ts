/**
 * Main-thread handle of one component worker: sends requests, collects results in order, answers
 * host calls, and enforces deadlines. A call still running at its deadline gets the worker
 * terminated (V8 interrupts a wasm loop); requests queued behind it on this worker never started
 * and are handed back to the pool to run elsewhere.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { GreenticError } from '../../common/errors.js';
import {
  CTL,
  CTL_BYTES,
  FIRE_AND_FORGET,
  STARTED_AT_F64,
  EXEC_MS_F64,
  type CallRequest,
  type CompactCall,
  type HostAnswer,
  type HostCall,
  type WorkerChannel,
  type WorkerInit,
  type WorkerRequest,
  type WorkerResult,
} from './protocol.js';
import { SLOT_BYTES, SlotArea } from './slots.js';
import { workerScript } from './worker-script.js';

/** `Atomics.waitAsync` (ES2024; the project's lib is ES2023). */
type WaitAsync = (
  ta: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

export type DeathReason =
  | { kind: 'timeout'; request: PendingRequest }
  | { kind: 'memory' }
  | { kind: 'crash'; error: string; outOfMemory: boolean }
  | { kind: 'retired' };

/** One request in flight on a worker. */
export interface PendingRequest {
  /** Position in this worker's FIFO (1-based), set by `send`. */
  seq: number;
  /** Component call id (0 for load/drop/describe bookkeeping). */
  callId: number;
  /** performance.now() deadline, counted from the call; Infinity for none. */
  deadlineAt: number;
  /** Run-time budget once started: a request that started late still gets this long. */
  deadlineMs: number;
  /** Set once the caller was answered early (deadline passed while it waited behind another). */
  expired?: boolean;
  /** The worker's answer, or the error that replaced it. */
  settle(result: WorkerResult | undefined, error?: GreenticError): void;
  /** The worker died before starting it: run it somewhere else (or fail it). */
  orphaned?(): void;
  /** The pool's record for host calls of this request. */
  scope?: unknown;
}

export interface PoolWorkerHooks {
  /** Handles a host call; returns the answer, or undefined for fire-and-forget ops. */
  hostCall(
    worker: PoolWorker,
    request: PendingRequest | undefined,
    call: HostCall,
  ): Promise<HostAnswer> | HostAnswer | undefined;
  /** The error for a request stopped at its deadline (`running`: it was executing). */
  timeoutError(request: PendingRequest, running: boolean): GreenticError;
  /** The error for the request that was running when the worker died. */
  deathError(reason: DeathReason, request: PendingRequest): GreenticError;
  /** The worker is gone; `orphans` never started (their `orphaned()` was not called yet). */
  died(worker: PoolWorker, reason: DeathReason, orphans: PendingRequest[]): void;
  /** A request finished: the pool may send more work. */
  freed(worker: PoolWorker): void;
}

export interface PoolWorkerOptions {
  id: number;
  tenantId: string;
  channel: WorkerChannel;
  memoryCapBytes: number;
  /** JS heap limit of the worker (MiB). */
  heapMb: number;
  spinUs: number;
  mainSpinUs: number;
  /** Requests in flight at most (one slot each). */
  slots: number;
  hooks: PoolWorkerHooks;
}

let nextThreadName = 1;
/** Component calls in flight across every worker of the process (main-thread spin only when 1). */
let callsInFlight = 0;

/** Extra wait granted to requests queued behind a worker's boot or a component load. */
const SETUP_GRACE_MS = 10_000;

export class PoolWorker {
  readonly id: number;
  /** Digests whose load request was sent to this worker. */
  readonly loaded = new Set<string>();
  /** tenantKey/digest pairs with a live instance (as far as main knows). */
  readonly instances = new Set<string>();
  readonly startedAt = performance.now();
  lastActiveAt = performance.now();
  /** True once the worker answered its first request. */
  ready = false;
  dead = false;
  /** Finish what is in flight, then stop (pool shrink or settings change). */
  retiring = false;
  /** Being stopped: takes no more work. */
  private closing = false;

  private readonly worker: Worker;
  private readonly ctl: Int32Array;
  /** The worker's start time of its running request (STARTED_AT_F64). */
  private readonly startTimes: Float64Array;
  private readonly calls: MessagePort;
  private readonly results: MessagePort;
  private readonly hostCalls: MessagePort;
  private readonly hostAnswers: MessagePort;
  private readonly hooks: PoolWorkerHooks;
  private readonly channel: WorkerChannel;
  private readonly requestSlots: SlotArea;
  private readonly resultSlots: SlotArea;
  /** `${tenantKey}\0${digest}\0${name}\0${assetsDir}` -> binding number known to the worker. */
  private readonly bindings = new Map<string, number>();
  private inflight: PendingRequest[] = [];
  /** Requests waiting for a free slot (bookkeeping requests beyond the pipeline depth). */
  private backlog: Array<[WorkerRequest, PendingRequest]> = [];
  private readonly slotCount: number;
  private readonly mainSpinUs: number;
  private sent = 0;
  private received = 0;
  private waiting = false;
  private watchAt = Infinity;
  private watchTimer: NodeJS.Timeout | undefined;
  private referenced = false;
  private watchCheck = false;
  private wakeQueued = false;
  /** Moving average of how long calls run in the worker (ms): decides whether polling is worth it. */
  private execMs = 0;
  /** Polls in a row that timed out, and calls to go before polling again. */
  private pollMisses = 0;
  private pollSkip = 0;

  constructor(options: PoolWorkerOptions) {
    this.id = options.id;
    this.hooks = options.hooks;
    this.channel = options.channel;
    this.slotCount = options.slots;
    this.mainSpinUs = options.mainSpinUs;
    const area = SlotArea.byteLength(options.slots, SLOT_BYTES);
    const sab = new SharedArrayBuffer(CTL_BYTES + 2 * area);
    this.ctl = new Int32Array(sab, 0, CTL_BYTES / 4);
    this.startTimes = new Float64Array(sab, 0, CTL_BYTES / 8);
    this.requestSlots = new SlotArea(sab, CTL_BYTES, options.slots, SLOT_BYTES);
    this.resultSlots = new SlotArea(sab, this.requestSlots.end, options.slots, SLOT_BYTES);
    const calls = new MessageChannel();
    const results = new MessageChannel();
    const hostCalls = new MessageChannel();
    const hostAnswers = new MessageChannel();
    this.calls = calls.port1;
    this.results = results.port2;
    this.hostCalls = hostCalls.port2;
    this.hostAnswers = hostAnswers.port1;
    const init: WorkerInit = {
      workerId: options.id,
      tenantId: options.tenantId,
      channel: options.channel,
      ctl: sab,
      slots: options.slots,
      slotBytes: SLOT_BYTES,
      memoryCapBytes: options.memoryCapBytes,
      spinUs: options.spinUs,
      calls: calls.port2,
      results: results.port1,
      hostCalls: hostCalls.port1,
      hostAnswers: hostAnswers.port2,
    };
    const script = workerScript();
    this.worker = new Worker(script.filename, {
      ...script.options,
      name: `component-${options.tenantId}-${nextThreadName++}`,
      workerData: init,
      transferList: [calls.port2, results.port1, hostCalls.port1, hostAnswers.port2],
      resourceLimits: {
        maxOldGenerationSizeMb: options.heapMb,
        maxYoungGenerationSizeMb: Math.min(32, Math.max(8, Math.round(options.heapMb / 4))),
        stackSizeMb: 4,
      },
      stdout: false,
      stderr: false,
      env: {},
    });
    this.worker.unref();
    this.worker.on('error', (err: Error & { code?: string }) => {
      this.die({
        kind: 'crash',
        error: err.message,
        outOfMemory: err.code === 'ERR_WORKER_OUT_OF_MEMORY',
      });
    });
    this.worker.on('exit', (code) => {
      if (!this.dead)
        this.die({ kind: 'crash', error: `worker exited with code ${code}`, outOfMemory: false });
    });
    this.hostCalls.on('message', (call: HostCall) => this.onHostCall(call));
    this.hostCalls.unref();
    if (this.channel === 'message') {
      this.results.on('message', (result: WorkerResult) => this.onResult(result));
      this.results.unref();
    }
  }

  /** Requests sent (or waiting for a slot) and not answered yet. */
  get load(): number {
    return this.inflight.length + this.backlog.length;
  }

  /** Moving average of how long this worker's calls run (ms); 0 before the first. */
  get averageCallMs(): number {
    return this.execMs;
  }

  /** Component calls among them (loads and drops are bookkeeping). */
  get callsInFlight(): number {
    let n = 0;
    for (const p of this.inflight) if (p.callId !== 0) n++;
    for (const [, p] of this.backlog) if (p.callId !== 0) n++;
    return n;
  }

  /** May take new requests. */
  get available(): boolean {
    return !this.dead && !this.closing && !this.retiring;
  }

  get threadId(): number {
    return this.worker.threadId;
  }

  send(request: WorkerRequest, pending: PendingRequest): void {
    if (this.dead) throw new Error(`worker ${this.id} is dead`);
    if (this.inflight.length >= this.slotCount || this.backlog.length > 0) {
      // Every slot holds an unanswered request: this one waits until one is answered.
      this.backlog.push([request, pending]);
      if (!this.referenced) {
        this.referenced = true;
        this.worker.ref();
      }
      return;
    }
    this.post(request, pending);
  }

  private post(request: WorkerRequest, pending: PendingRequest): void {
    pending.seq = ++this.sent;
    if (pending.callId !== 0) callsInFlight++;
    if (this.channel !== 'atomics' || request.k !== 'call' || !this.writeCall(pending.seq, request)) {
      if (this.channel === 'atomics') this.requestSlots.markInPort(pending.seq);
      this.calls.postMessage(request);
    }
    this.inflight.push(pending);
    this.lastActiveAt = performance.now();
    if (!this.referenced) {
      // While it has work, the worker keeps the process alive (a CLI awaiting a call must not exit).
      this.referenced = true;
      this.worker.ref();
    }
    if (this.channel === 'atomics') {
      Atomics.store(this.ctl, CTL.REQ, this.sent);
      this.wake();
      if (this.mainSpinUs > 0 && callsInFlight === 1 && this.inflight.length === 1 && this.spinForResult()) {
        this.drain();
        if (pending.deadlineAt < this.watchAt && !this.dead && this.inflight.length > 0)
          this.arm(pending.deadlineAt);
        return;
      }
      if (!this.waiting) this.waitForResults();
    }
    if (pending.deadlineAt < this.watchAt) this.arm(pending.deadlineAt);
  }

  /**
   * Wakes the worker if it sleeps. A busy worker finds the new request on its own, and requests
   * posted together share one wake-up.
   */
  private wake(): void {
    if (Atomics.load(this.ctl, CTL.SLEEPING) === 0) return;
    if (this.mainSpinUs === 0) {
      // No polling (the default on two cores, where every cycle counts): the wake-up waits for the
      // end of this event-loop turn, so the calls of every message read in it share one. Waking a
      // thread that sleeps on the other core costs the caller more than a short call takes, and
      // each message arrives in its own I/O callback: woken at once, the worker would finish and
      // sleep again before the next one. In a process with nothing else to do the turn ends at once.
      if (this.wakeQueued) return;
      this.wakeQueued = true;
      setImmediate(() => {
        this.wakeQueued = false;
        if (!this.dead && Atomics.load(this.ctl, CTL.SLEEPING) !== 0) Atomics.notify(this.ctl, CTL.REQ, 1);
      });
      return;
    }
    if (this.inflight.length === 1) {
      // The only request: nothing to coalesce with, so the worker starts now, not after this turn.
      Atomics.notify(this.ctl, CTL.REQ, 1);
      return;
    }
    if (this.wakeQueued) return;
    this.wakeQueued = true;
    queueMicrotask(() => {
      this.wakeQueued = false;
      if (!this.dead) Atomics.notify(this.ctl, CTL.REQ, 1);
    });
  }

  /**
   * Polls for the result of the one call in flight, briefly: a sleeping main thread needs a
   * cross-thread wake-up (tens of µs on a busy machine), a short call is often done sooner.
   */
  private spinForResult(): boolean {
    // Calls that run much longer than the budget (measured in the worker) are waited for asleep.
    const maxMs = this.mainSpinUs / 1000;
    if (this.execMs > 2 * maxMs) return false;
    // After polls that found nothing (no free core: the worker could not run meanwhile), poll
    // again only every 2, 4 ... 256 calls, so a busy machine costs at most a sliver of CPU.
    if (this.pollSkip > 0) {
      this.pollSkip--;
      return false;
    }
    const until = performance.now() + maxMs;
    for (let i = 0; ; i++) {
      if (Atomics.load(this.ctl, CTL.RESP) >= this.sent) {
        this.pollMisses = 0;
        return true;
      }
      if ((i & 31) === 31 && performance.now() >= until) {
        this.pollMisses = Math.min(this.pollMisses + 1, 8);
        this.pollSkip = 2 ** this.pollMisses;
        return false;
      }
    }
  }

  /** A call into its slot, compact; false when it does not fit (it then goes on the port). */
  private writeCall(seq: number, r: CallRequest): boolean {
    const key = `${r.tk}\u0000${r.d}\u0000${r.n}\u0000${r.a ?? ''}`;
    let binding = this.bindings.get(key);
    const fresh = binding === undefined;
    if (binding === undefined) binding = this.bindings.size + 1;
    const c = r.ctx;
    const compact: CompactCall = [
      r.id,
      binding,
      r.op,
      r.input,
      r.deadlineMs,
      c.flowId,
      c.nodeId,
      c.messageId,
      c.userId,
      c.sessionKey,
      c.text,
      c.traceId,
      c.attempt,
      c.locale,
    ];
    if (fresh) compact.push([r.tk, r.t, r.d, r.n, r.a]);
    if (!this.requestSlots.write(seq, compact)) return false;
    if (fresh) this.bindings.set(key, binding);
    return true;
  }

  /** Stops the worker now (retire, close). Requests in flight are failed or handed back. */
  terminate(reason: DeathReason = { kind: 'retired' }): void {
    this.die(reason);
  }

  // ---- results ------------------------------------------------------------------------------

  private waitForResults(): void {
    const r = waitAsync(this.ctl, CTL.RESP, this.received);
    if (!r.async) {
      queueMicrotask(() => this.drain());
      return;
    }
    this.waiting = true;
    void r.value.then(() => {
      this.waiting = false;
      this.drain();
    });
  }

  /** Takes every result the worker has posted (atomics channel). */
  private drain(): void {
    if (this.dead) return;
    this.pumpHostCalls();
    if (!this.drainResults()) return;
    if (this.channel === 'atomics' && this.inflight.length > 0 && !this.waiting && !this.dead) {
      this.waitForResults();
    }
  }

  /** Settles every posted result; false when the worker died on one of them. */
  private drainResults(): boolean {
    const posted = Atomics.load(this.ctl, CTL.RESP);
    while (this.received < posted) {
      let result: WorkerResult;
      const slot =
        this.channel === 'atomics' ? this.resultSlots.read(this.received + 1) : { inPort: true as const };
      if (slot.inPort) {
        const entry = receiveMessageOnPort(this.results);
        if (!entry) break;
        result = entry.message as WorkerResult;
      } else {
        result = slot.value as WorkerResult;
      }
      if (!this.onResult(result)) return false;
    }
    return true;
  }

  /** Settles the oldest request; false when the worker is gone afterwards. */
  private onResult(result: WorkerResult): boolean {
    this.received++;
    const pending = this.inflight.shift();
    if (pending && pending.callId !== 0) {
      callsInFlight--;
      const ran = this.startTimes[EXEC_MS_F64]!;
      this.execMs = this.execMs === 0 ? ran : this.execMs * 0.8 + ran * 0.2;
    }
    if (!this.watchCheck && this.inflight.length > 0) {
      this.watchCheck = true;
      queueMicrotask(() => this.rescheduleWatch());
    }
    this.ready = true;
    this.lastActiveAt = performance.now();
    while (this.backlog.length > 0 && this.inflight.length < this.slotCount && !this.closing) {
      const [request, next] = this.backlog.shift()!;
      this.post(request, next);
    }
    if (this.inflight.length === 0) this.release();
    if (pending && !pending.expired) pending.settle(result);
    if (!result.ok && result.kill === 'memory') {
      this.die({ kind: 'memory' });
      return false;
    }
    if (this.closing) return true;
    if (this.retiring && this.inflight.length === 0) {
      this.die({ kind: 'retired' });
      return false;
    }
    this.hooks.freed(this);
    return !this.dead;
  }

  private release(): void {
    if (this.referenced) {
      this.referenced = false;
      this.worker.unref();
    }
  }

  // ---- host calls ---------------------------------------------------------------------------

  private pumpHostCalls(): void {
    // Log and telemetry calls are posted before the result: handle them while the call's span
    // and scope are still open.
    for (
      let entry = receiveMessageOnPort(this.hostCalls);
      entry;
      entry = receiveMessageOnPort(this.hostCalls)
    ) {
      this.onHostCall(entry.message as HostCall);
    }
  }

  private onHostCall(call: HostCall): void {
    const pending = this.inflight.find((p) => p.callId === call.id);
    let answer: Promise<HostAnswer> | HostAnswer | undefined;
    try {
      answer = this.hooks.hostCall(this, pending, call);
    } catch (e) {
      answer = { tag: 'err', val: { code: 'failed', message: (e as Error).message } };
    }
    if (FIRE_AND_FORGET.has(call.op)) return;
    // The worker sleeps until it gets an answer, so every request-type call gets exactly one.
    Promise.resolve(answer).then(
      (a) => this.answerHost(a ?? { tag: 'err', val: { code: 'failed', message: 'no answer' } }),
      (e: unknown) => this.answerHost({ tag: 'err', val: { code: 'failed', message: (e as Error).message } }),
    );
  }

  private answerHost(answer: HostAnswer): void {
    if (this.dead) return;
    this.hostAnswers.postMessage(answer);
    Atomics.add(this.ctl, CTL.HOST, 1);
    Atomics.notify(this.ctl, CTL.HOST, 1);
  }

  // ---- deadlines ----------------------------------------------------------------------------

  private arm(at: number): void {
    if (this.watchTimer) clearTimeout(this.watchTimer);
    this.watchAt = at;
    this.watchTimer = setTimeout(() => this.onWatch(), Math.max(0, at - performance.now()));
    // The worker's ref keeps the process alive while calls run; the timer itself need not.
    this.watchTimer.unref();
  }

  /**
   * After results came in, the next request may just have started (after a load or a boot whose
   * grace period the armed time still reflects): bring the watchdog forward if it is due sooner.
   */
  private rescheduleWatch(): void {
    this.watchCheck = false;
    if (this.dead || this.closing) return;
    let setupAhead = !this.ready;
    let next = Infinity;
    for (const p of this.inflight) {
      if (p.callId === 0) {
        setupAhead = true;
        continue;
      }
      if (p.expired) continue;
      next = Math.min(
        next,
        setupAhead ? p.deadlineAt + SETUP_GRACE_MS : Math.max(p.deadlineAt, performance.now() + 1),
      );
    }
    if (next < this.watchAt) this.arm(next);
  }

  private onWatch(): void {
    this.watchTimer = undefined;
    this.watchAt = Infinity;
    if (this.dead) return;
    this.drain();
    if (this.dead) return;
    const now = performance.now();
    const started = Atomics.load(this.ctl, CTL.STARTED);
    let next = Infinity;
    // Loading a component (importing its bindings) is setup, not another call's time.
    let setupAhead = !this.ready;
    for (const p of this.inflight) {
      if (p.callId === 0) {
        if (p.seq > started || p.seq === started) setupAhead = true;
        continue;
      }
      if (p.expired) continue;
      if (p.seq <= started) {
        // Running. Its budget counts from the call, or from its start when it started late
        // (a cold worker's boot is not the component's time).
        const startedAt = this.startTimes[STARTED_AT_F64]! - performance.timeOrigin;
        const killAt = Math.max(p.deadlineAt, startedAt + p.deadlineMs);
        if (killAt <= now + 0.5) {
          this.die({ kind: 'timeout', request: p });
          return;
        }
        next = Math.min(next, killAt);
        continue;
      }
      const expireAt = setupAhead ? p.deadlineAt + SETUP_GRACE_MS : p.deadlineAt;
      if (expireAt <= now + 0.5) {
        // Still waiting behind another request on this worker: answer the caller now; the
        // worker will run it later and its result is dropped.
        p.expired = true;
        p.settle(undefined, this.hooks.timeoutError(p, false));
      } else {
        next = Math.min(next, expireAt);
      }
    }
    if (next < Infinity) this.arm(next);
  }

  // ---- death --------------------------------------------------------------------------------

  private die(reason: DeathReason): void {
    if (this.dead || this.closing) return;
    this.closing = true;
    // Results already posted are real answers: settle them before failing anything.
    this.pumpHostCalls();
    this.drainResults();
    this.dead = true;
    if (this.watchTimer) clearTimeout(this.watchTimer);
    const started = Atomics.load(this.ctl, CTL.STARTED);
    const inflight = this.inflight;
    this.inflight = [];
    for (const p of inflight) if (p.callId !== 0) callsInFlight--;
    // Never sent: hand back like requests that never started.
    for (const [, p] of this.backlog) {
      p.seq = Number.MAX_SAFE_INTEGER;
      inflight.push(p);
    }
    this.backlog = [];
    const orphans: PendingRequest[] = [];
    for (const p of inflight) {
      if (p.expired) continue;
      // The request that was executing gets the error. Under a timeout that is the one that
      // passed its deadline; a request that started in the instant before the kill is re-run.
      const failed = reason.kind === 'timeout' ? p === reason.request : p.seq <= started;
      if (failed) p.settle(undefined, this.hooks.deathError(reason, p));
      else orphans.push(p);
    }
    // Wake our own waitAsync so it does not stay pending on a dead worker's buffer.
    Atomics.add(this.ctl, CTL.RESP, 0);
    Atomics.notify(this.ctl, CTL.RESP);
    this.release();
    void this.worker.terminate().catch(() => undefined);
    this.hostCalls.close();
    this.calls.close();
    this.results.close();
    this.hostAnswers.close();
    this.hooks.died(this, reason, orphans);
  }
}
