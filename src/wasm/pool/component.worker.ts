/**
 * A component worker: one thread of one tenant's pool. It holds that tenant's instances (keyed
 * by tenant/env/team and component digest), runs the calls it is sent one at a time, and checks
 * each instance's linear memory after every call. It never decides what a component may do: host
 * calls go to the main thread (see protocol.ts), which answers while this thread sleeps.
 *
 * Core modules arrive compiled (`WebAssembly.Module`, shared through structured clone), and the
 * generated bindings are imported from the transpile cache: nothing is transpiled or compiled here.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import {
  ComponentError,
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTrapError,
} from '../../common/errors.js';
import { callComponent, describeOperations, trapError } from '../component-calls.js';
import type { PreparedComponent, ResolvedComponentCall } from '../../core/component-runtime.js';
import type { ComponentExports, ComponentImports } from '../transpile-cache.js';
import { errorText } from '../../common/errors.js';
import { hostImports, isHostImport } from '../host/host-imports.js';
import { isUpstreamImport, upstreamImports } from '../host/upstream-imports.js';
import {
  CTL,
  FIRE_AND_FORGET,
  STARTED_AT_F64,
  EXEC_MS_F64,
  toWireError,
  CTL_BYTES,
  type CallRequest,
  type CompactCall,
  type CompiledModule,
  type DescribeRequest,
  type HostAnswer,
  type HostOp,
  type LoadRequest,
  type WorkerInit,
  type WorkerRequest,
  type WorkerResult,
} from './protocol.js';
import { SlotArea } from './slots.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';

interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmInstance {
  readonly exports: Record<string, unknown>;
}
interface WasmApi {
  instantiate(module: CompiledModule, imports?: object): Promise<WasmInstance>;
  Memory: abstract new (...args: never[]) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

type InstantiateCore = (module: CompiledModule, imports?: object) => Promise<WasmInstance>;
interface GeneratedBindings {
  instantiate(
    getCoreModule: (name: string) => CompiledModule,
    imports: ComponentImports,
    instantiateCore?: InstantiateCore,
  ): Promise<ComponentExports>;
}

interface Loaded {
  meta: PreparedComponent;
  imports: string[];
  modules: Map<string, CompiledModule>;
  bindings: GeneratedBindings;
}

interface Instance {
  exports: ComponentExports;
  memories: WasmMemory[];
}

const init = workerData as WorkerInit & {
  calls: MessagePort;
  results: MessagePort;
  hostCalls: MessagePort;
  hostAnswers: MessagePort;
};
const ctl = new Int32Array(init.ctl);
const startedAt = new Float64Array(init.ctl);
const cap = init.memoryCapBytes;
const requestSlots = new SlotArea(init.ctl, CTL_BYTES, init.slots, init.slotBytes);
const resultSlots = new SlotArea(init.ctl, requestSlots.end, init.slots, init.slotBytes);
/** Static parts of compact calls: binding number -> tenant key, tenant, digest, name. */
const bindings = new Map<number, [string, TenantCtx, string, string, string | undefined]>();

const components = new Map<string, Promise<Loaded>>();
const failedLoads = new Map<string, Error>();
const ready = new Map<string, Loaded>();
/** tenantKey -> digest -> instance. */
const instances = new Map<string, Map<string, Instance>>();

let current: CallRequest | undefined;
let hostSeq = 0;
/** Host imports (greentic:host and upstream's), the same for every instance of this worker. */
let hostSide: ComponentImports | undefined;
/** Full import objects per assets directory ('' = none): the WASI filesystem differs per pack. */
const importSets = new Map<string, ComponentImports>();
/** Set once this worker has answered `kill`: it runs nothing more and waits to be terminated. */
let poisoned = false;

// ---- host bridge ---------------------------------------------------------------------------

function bridge(op: HostOp, args: unknown[]): HostAnswer | undefined {
  const call = current;
  if (!call) {
    return FIRE_AND_FORGET.has(op)
      ? undefined
      : {
          tag: 'err',
          val: { code: 'unavailable', message: `host function '${op}' called outside a component call` },
        };
  }
  init.hostCalls.postMessage({ id: call.id, op, args });
  if (FIRE_AND_FORGET.has(op)) return undefined;
  // The import is synchronous for the guest: sleep until main has answered this one.
  const seq = ++hostSeq;
  for (;;) {
    const answered = Atomics.load(ctl, CTL.HOST);
    if (answered >= seq) break;
    Atomics.wait(ctl, CTL.HOST, answered);
  }
  return receiveMessageOnPort(init.hostAnswers)?.message as HostAnswer | undefined;
}

/** `control.should-cancel`: true once the running call is past its deadline. */
const control = {
  shouldCancel(): boolean {
    const call = current;
    if (!call) return false;
    return performance.timeOrigin + performance.now() - startedAt[STARTED_AT_F64]! > call.deadlineMs;
  },
};

async function importsFor(loaded: Loaded, assetsDir = ''): Promise<ComponentImports> {
  hostSide ??= { ...hostImports(bridge), ...upstreamImports(bridge, control) };
  const wasiNeeded = loaded.imports.some((name) => name.startsWith('wasi:'));
  // Only componentize-js-style components import WASI; WAT fixtures never load the shim.
  if (!wasiNeeded) return hostSide;
  let set = importSets.get(assetsDir);
  if (!set) {
    const { createWasiSandbox } = await import('../wasi-sandbox.js');
    set = { ...createWasiSandbox(assetsDir ? { assetsDir } : {}), ...hostSide };
    importSets.set(assetsDir, set);
  }
  const { withWasiVersions } = await import('../wasi-sandbox.js');
  return withWasiVersions(set, loaded.imports);
}

// ---- loading and instances -----------------------------------------------------------------

async function load(req: LoadRequest): Promise<Loaded> {
  const bindings = (await import(/* @vite-ignore */ req.jsUrl)) as GeneratedBindings;
  if (typeof bindings.instantiate !== 'function') {
    throw new ComponentLoadError(`component '${req.name}': generated bindings have no instantiate()`, {
      component: req.name,
    });
  }
  const loaded: Loaded = {
    meta: {
      name: req.name,
      version: req.version,
      digest: req.digest,
      world: req.world,
      exports: [],
      operations: [],
    },
    imports: req.imports.filter(
      (name) => name.startsWith('wasi:') || isHostImport(name) || isUpstreamImport(name),
    ),
    modules: new Map(req.modules),
    bindings,
  };
  ready.set(req.digest, loaded);
  return loaded;
}

function memoryBytes(instance: Instance): number {
  let total = 0;
  for (const m of instance.memories) total += m.buffer.byteLength;
  return total;
}

/** An instance per component and assets directory (one component may sit in two packs). */
function instanceKey(req: CallRequest): string {
  return req.a ? `${req.d}\u0000${req.a}` : req.d;
}

async function instantiate(loaded: Loaded, assetsDir?: string): Promise<Instance> {
  const memories: WasmMemory[] = [];
  // jco instantiates each core module through this hook: it is where the memories are visible.
  const instantiateCore: InstantiateCore = async (module, coreImports) => {
    const instance = await wasm.instantiate(module, coreImports);
    for (const value of Object.values(instance.exports)) {
      if (value instanceof wasm.Memory && !memories.includes(value)) memories.push(value);
    }
    return instance;
  };
  const getCoreModule = (name: string): CompiledModule => {
    const module = loaded.modules.get(name);
    if (!module) throw new Error(`core module '${name}' is not part of component ${loaded.meta.digest}`);
    return module;
  };
  const exports = await loaded.bindings.instantiate(
    getCoreModule,
    await importsFor(loaded, assetsDir),
    instantiateCore,
  );
  return { exports, memories };
}

function dropInstance(tk: string, key: string): void {
  const byDigest = instances.get(tk);
  byDigest?.delete(key);
  if (byDigest?.size === 0) instances.delete(tk);
}

// ---- requests ------------------------------------------------------------------------------

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function failure(err: unknown, mem = 0): WorkerResult {
  return { ok: false, error: toWireError(err), mem };
}

function memoryKill(req: CallRequest, loaded: Loaded, mem: number, what: string): WorkerResult {
  poisoned = true;
  const err = new ComponentMemoryExceededError(
    `component '${req.n}' operation '${req.op}' for tenant '${req.tk}' ${what}; the instance was discarded`,
    { tenant: req.tk, component: loaded.meta.name, operation: req.op, memoryBytes: mem, capBytes: cap },
  );
  return { ok: false, error: toWireError(err), mem, kill: 'memory' };
}

function run(req: CallRequest, loaded: Loaded, instance: Instance): WorkerResult {
  const call: ResolvedComponentCall = {
    component: req.n === loaded.meta.name ? loaded.meta : { ...loaded.meta, name: req.n },
    operation: req.op,
    input: req.input,
    ctx: req.ctx,
    deadlineMs: req.deadlineMs,
  };
  let value: unknown;
  let error: unknown;
  current = req;
  try {
    value = callComponent(instance.exports, req.t, call);
  } catch (e) {
    error = e;
  } finally {
    current = undefined;
  }
  const mem = memoryBytes(instance);
  if (mem > cap) {
    dropInstance(req.tk, instanceKey(req));
    return memoryKill(req, loaded, mem, `grew its linear memory to ${mib(mem)}, past its cap of ${mib(cap)}`);
  }
  if (error === undefined) return { ok: true, value, mem };
  if (error instanceof ComponentTrapError) {
    dropInstance(req.tk, instanceKey(req));
    // A failed memory.grow at the (patched) maximum surfaces as a trap: an instance that trapped
    // within an eighth of its cap ran into the cap, not into a bug.
    if (mem + Math.max(65_536, cap / 8) > cap) {
      return memoryKill(req, loaded, mem, `ran into its memory cap of ${mib(cap)} (trapped at ${mib(mem)})`);
    }
  }
  return failure(error, mem);
}

function loadedFor(digest: string): Loaded | Promise<Loaded> {
  const known = ready.get(digest);
  if (known) return known;
  const failed = failedLoads.get(digest);
  if (failed) throw failed;
  const pending = components.get(digest);
  if (!pending) {
    throw new ComponentLoadError(`component ${digest.slice(0, 12)} was not loaded into this worker`, {
      digest,
    });
  }
  return pending;
}

function handleCall(req: CallRequest): WorkerResult | Promise<WorkerResult> {
  const instance = instances.get(req.tk)?.get(instanceKey(req));
  const known = ready.get(req.d);
  if (instance && known) return run(req, known, instance);
  return (async () => {
    let loaded: Loaded;
    try {
      loaded = await loadedFor(req.d);
    } catch (e) {
      return failure(e);
    }
    let fresh: Instance;
    try {
      fresh = await instantiate(loaded, req.a);
    } catch (e) {
      return failure(trapError(e, req.t, loaded.meta, 'instantiate'));
    }
    const mem = memoryBytes(fresh);
    if (mem > cap) {
      return memoryKill(
        req,
        loaded,
        mem,
        `needs ${mib(mem)} of linear memory to start, more than its cap of ${mib(cap)}`,
      );
    }
    let byDigest = instances.get(req.tk);
    if (!byDigest) instances.set(req.tk, (byDigest = new Map()));
    byDigest.set(instanceKey(req), fresh);
    return run(req, loaded, fresh);
  })();
}

async function handleDescribe(req: DescribeRequest): Promise<WorkerResult> {
  try {
    const loaded = await loadedFor(req.d);
    // A scratch instance, dropped afterwards: describe() must leave no state in a tenant's.
    const scratch = await instantiate(loaded);
    return {
      ok: true,
      operations: describeOperations(scratch.exports, loaded.meta.name),
      mem: memoryBytes(scratch),
    };
  } catch (e) {
    if (e instanceof ComponentError) return failure(e);
    return failure(new ComponentLoadError(`component describe() failed: ${errorText(e)}`, { digest: req.d }));
  }
}

function handle(req: WorkerRequest): WorkerResult | Promise<WorkerResult> {
  switch (req.k) {
    case 'call':
      return handleCall(req);
    case 'load': {
      if (ready.has(req.digest) || components.has(req.digest)) return { ok: true, value: null, mem: 0 };
      const pending = load(req);
      components.set(req.digest, pending);
      return pending.then(
        () => ({ ok: true, value: null, mem: 0 }),
        (e: unknown) => {
          const err =
            e instanceof ComponentError
              ? e
              : new ComponentLoadError(`component '${req.name}' could not be loaded: ${errorText(e)}`, {
                  component: req.name,
                });
          failedLoads.set(req.digest, err);
          return failure(err);
        },
      );
    }
    case 'describe':
      return handleDescribe(req);
    case 'drop':
      instances.delete(req.tk);
      return { ok: true, value: null, mem: 0 };
  }
}

// ---- the loop ------------------------------------------------------------------------------

function markStarted(seq: number): void {
  startedAt[STARTED_AT_F64] = performance.timeOrigin + performance.now();
  Atomics.store(ctl, CTL.STARTED, seq);
}

function post(result: WorkerResult, done: number): void {
  startedAt[EXEC_MS_F64] = performance.timeOrigin + performance.now() - startedAt[STARTED_AT_F64]!;
  if (init.channel !== 'atomics' || !resultSlots.write(done, result)) init.results.postMessage(result);
  Atomics.store(ctl, CTL.RESP, done);
  Atomics.notify(ctl, CTL.RESP);
}

/** Recent gap between a result and the next request (ms, moving average). */
let gapMs = Infinity;
let idleSince = 0;
/** Spins in a row that found no request, and sleeps to go before spinning again. */
let spinMisses = 0;
let spinSkip = 0;

/**
 * Polls for the next request before sleeping, but only while requests have been following each
 * other closely (a caller in a loop): a sleeping thread wakes up tens of µs later, with cold
 * caches. An idle worker sleeps at once and costs nothing.
 */
function spinFor(done: number): boolean {
  const maxMs = init.spinUs / 1000;
  if (maxMs <= 0 || gapMs > maxMs) return false;
  // Spins that found nothing (the caller paused, or this thread was preempted) back off
  // exponentially, so a worker on a busy machine does not burn a core it shares.
  if (spinSkip > 0) {
    spinSkip--;
    return false;
  }
  const until = performance.now() + Math.min(maxMs, 2 * gapMs + 0.005);
  for (let i = 0; ; i++) {
    if (Atomics.load(ctl, CTL.REQ) !== done) {
      spinMisses = 0;
      return true;
    }
    if ((i & 63) === 63 && performance.now() >= until) {
      spinMisses = Math.min(spinMisses + 1, 8);
      spinSkip = 2 ** spinMisses;
      return false;
    }
  }
}

function noteRequest(): void {
  if (idleSince === 0) return;
  const gap = performance.now() - idleSince;
  gapMs = gapMs === Infinity ? gap : gapMs * 0.8 + gap * 0.2;
  idleSince = 0;
}

async function serveAtomics(): Promise<void> {
  let done = 0;
  for (;;) {
    const posted = Atomics.load(ctl, CTL.REQ);
    if (posted === done || poisoned) {
      if (!poisoned && spinFor(done)) continue;
      // Announce the sleep, then look once more: main notifies only a worker that announced it
      // (both sides use sequentially consistent atomics, so one of them sees the other's write).
      Atomics.store(ctl, CTL.SLEEPING, 1);
      if (Atomics.load(ctl, CTL.REQ) === posted) Atomics.wait(ctl, CTL.REQ, posted);
      Atomics.store(ctl, CTL.SLEEPING, 0);
      continue;
    }
    const request = nextRequest(done + 1);
    if (!request) {
      // The counter moved before the message was visible: cannot happen (post precedes the store).
      Atomics.wait(ctl, CTL.REQ, posted, 1);
      continue;
    }
    markStarted(done + 1);
    noteRequest();
    let result = handle(request);
    if (result instanceof Promise) result = await result;
    done++;
    post(result, done);
    idleSince = performance.now();
  }
}

/** Request number `seq`: from its slot, or from the port when the slot says so. */
function nextRequest(seq: number): WorkerRequest | undefined {
  const slot = requestSlots.read(seq);
  if (slot.inPort) return receiveMessageOnPort(init.calls)?.message as WorkerRequest | undefined;
  const c = slot.value as CompactCall;
  if (c[14]) bindings.set(c[1], c[14]);
  // An unknown binding is a protocol bug: the call then fails as "not loaded" rather than hang.
  const bound = bindings.get(c[1]) ?? ['', { tenantId: '', envId: '' }, '', '?', undefined];
  const ctx: CallRequest['ctx'] = {
    flowId: c[5],
    nodeId: c[6],
    messageId: c[7],
    userId: c[8],
    sessionKey: c[9],
    text: c[10],
  };
  if (c[11] !== undefined) ctx.traceId = c[11];
  if (c[12] !== undefined) ctx.attempt = c[12];
  if (c[13] !== undefined) ctx.locale = c[13];
  return {
    k: 'call',
    id: c[0],
    tk: bound[0],
    t: bound[1],
    d: bound[2],
    n: bound[3],
    ...(bound[4] ? { a: bound[4] } : {}),
    op: c[2],
    input: c[3],
    ctx,
    deadlineMs: c[4],
  };
}

function serveMessages(): void {
  let done = 0;
  let chain: Promise<void> = Promise.resolve();
  init.calls.on('message', (req: WorkerRequest) => {
    chain = chain.then(async () => {
      if (poisoned) return;
      markStarted(done + 1);
      let result = handle(req);
      if (result instanceof Promise) result = await result;
      done++;
      post(result, done);
    });
  });
}

// Awaiting an instantiation leaves no libuv handle behind: keep this thread's loop alive.
setInterval(() => undefined, 2 ** 30);

if (init.channel === 'message') serveMessages();
else void serveAtomics();
