/**
 * What the main thread and a component worker say to each other, shared by both sides.
 *
 * The call channel (`atomics`): one SharedArrayBuffer per worker holds counters and one slot per
 * pipelined request and result (slots.ts). Calls are written into their slot as compact CBOR;
 * anything else, or a value too big for a slot, goes through a MessagePort that nobody listens on
 * and is taken with `receiveMessageOnPort` (synchronous, no event-loop turn). The counters say
 * how many requests and results there are and wake the other side with `Atomics.notify`: the
 * worker sleeps in `Atomics.wait`, the main thread in `Atomics.waitAsync` (never blocking its
 * event loop). Both sides keep FIFO order, so the n-th result answers the n-th request. Under
 * load a worker finds its next request already written and main drains several results per
 * wake-up: that is the batching, with no timer. The `message` channel (plain postMessage and
 * 'message' events) is kept for comparison (bench/components) and as a fallback.
 *
 * Host calls go the other way: the worker posts on `hostCalls` (main listens) and, for calls that
 * return something, sleeps on the HOST counter until main posts the answer on `hostAnswers`.
 */
import type {
  ComponentCallContext,
  ComponentOperation,
  ComponentWorld,
} from '../../core/component-runtime.js';
import {
  ComponentBusyError,
  ComponentError,
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  ComponentTrapError,
  GreenticError,
} from '../../common/errors.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';

/** Int32 slots of the control buffer. */
export const CTL = {
  /** Requests posted by main (count). */
  REQ: 0,
  /** Results posted by the worker (count). */
  RESP: 1,
  /** Requests the worker has started (count): the request numbered STARTED is running or done. */
  STARTED: 2,
  /** Host answers posted by main (count). */
  HOST: 3,
  /** 1 while the worker sleeps (or is about to) in Atomics.wait on REQ: only then does main notify. */
  SLEEPING: 4,
} as const;

/** Float64 slot (index into a Float64Array over the same buffer): when the running request started, epoch ms. */
export const STARTED_AT_F64 = 4;
/** Float64 slot: how long the last finished request ran in the worker, ms. */
export const EXEC_MS_F64 = 5;

/** Bytes of counters at the start of the shared buffer; slots follow. */
export const CTL_BYTES = 64;

export type WorkerChannel = 'atomics' | 'message';

/** What a worker starts with (its `workerData`). */
export interface WorkerInit {
  workerId: number;
  tenantId: string;
  channel: WorkerChannel;
  /** Counters (CTL_BYTES), then `slots` request slots, then `slots` result slots. */
  ctl: SharedArrayBuffer;
  slots: number;
  slotBytes: number;
  /** Linear-memory cap of every instance in this worker, bytes. */
  memoryCapBytes: number;
  /** How long the worker polls for the next request before it sleeps (0: sleep at once). */
  spinUs: number;
  calls: MessagePortLike;
  results: MessagePortLike;
  hostCalls: MessagePortLike;
  hostAnswers: MessagePortLike;
}

/** Just what the protocol needs of a MessagePort (keeps this file free of Node-main types). */
export interface MessagePortLike {
  postMessage(value: unknown, transfer?: readonly unknown[]): void;
}

/** A compiled core module, as `WebAssembly.Module` (shared by structured clone, not recompiled). */
export type CompiledModule = object;

export interface LoadRequest {
  k: 'load';
  digest: string;
  name: string;
  version: string;
  world: ComponentWorld;
  /** file: URL of jco's generated `component.js`. */
  jsUrl: string;
  modules: Array<[string, CompiledModule]>;
  /** Interfaces the component imports (jco's keys). */
  imports: string[];
}

/** The call context fields a worker needs (never the session object or the allow-lists). */
export type WireCallContext = Omit<ComponentCallContext, 'allowedSecrets' | 'session'>;

export interface CallRequest {
  k: 'call';
  id: number;
  /** tenantKey of the instance: tenant/env/team. */
  tk: string;
  t: TenantCtx;
  d: string;
  /** The name the caller knows the component by (errors name it). */
  n: string;
  /** Host directory of the pack's assets, visible read-only to the guest at `/`. */
  a?: string;
  op: string;
  input: unknown;
  ctx: WireCallContext;
  deadlineMs: number;
}

/**
 * A call as it travels in a slot: positional, its static part (tenant, component) sent once per
 * worker as `bind` and referred to by number afterwards.
 */
export type CompactCall = [
  id: number,
  binding: number,
  op: string,
  input: unknown,
  deadlineMs: number,
  flowId: string,
  nodeId: string,
  messageId: string,
  userId: string,
  sessionKey: string,
  text: string,
  traceId: string | undefined,
  attempt: number | undefined,
  locale: string | undefined,
  bind?: [tk: string, t: TenantCtx, d: string, n: string, a: string | undefined],
];

/** 0.6 describe() in a fresh instance that is dropped afterwards. */
export interface DescribeRequest {
  k: 'describe';
  id: number;
  d: string;
}

/** Drop the instances of a tenant key (pack reload, tenant removal). */
export interface DropRequest {
  k: 'drop';
  tk: string;
}

export type WorkerRequest = LoadRequest | CallRequest | DescribeRequest | DropRequest;

export interface WireError {
  cls: ErrorClassName;
  code: string;
  message: string;
  httpStatus: number;
  details: Record<string, unknown>;
}

export type WorkerResult =
  | { ok: true; value: unknown; mem: number }
  | {
      ok: false;
      error: WireError;
      mem: number;
      /** The worker must be discarded (its instance went past the memory cap). */
      kill?: 'memory';
    }
  | { ok: true; operations: ComponentOperation[]; mem: number };

// ---- host calls -----------------------------------------------------------------------------

export type HostOp =
  | 'secrets.get'
  | 'state.get'
  | 'state.set'
  | 'state.delete'
  | 'http.fetch'
  | 'log'
  | 'telemetry.event'
  // upstream interfaces (host/upstream-imports.ts)
  | 'state-store.read'
  | 'state-store.write'
  | 'state-store.delete'
  | 'http-client.send'
  | 'secrets-store.get';

/** Ops that return nothing: the worker posts them and goes on. */
export const FIRE_AND_FORGET: ReadonlySet<HostOp> = new Set<HostOp>(['log', 'telemetry.event']);

export interface HostCall {
  /** Id of the component call this host call belongs to. */
  id: number;
  op: HostOp;
  args: unknown[];
}

export interface HostError {
  code: string;
  message: string;
}

export type HostAnswer = { tag: 'ok'; val: unknown } | { tag: 'err'; val: HostError };

// ---- errors across the thread boundary -----------------------------------------------------

type ErrorClassName =
  | 'ComponentError'
  | 'ComponentLoadError'
  | 'ComponentTrapError'
  | 'ComponentTimeoutError'
  | 'ComponentMemoryExceededError'
  | 'ComponentBusyError'
  | 'GreenticError';

export function toWireError(err: unknown): WireError {
  if (err instanceof GreenticError) {
    const cls = (
      [
        ComponentLoadError,
        ComponentTrapError,
        ComponentTimeoutError,
        ComponentMemoryExceededError,
        ComponentBusyError,
        ComponentError,
      ] as const
    ).find((c) => err instanceof c);
    return {
      cls: (cls?.name ?? 'GreenticError') as ErrorClassName,
      code: err.code,
      message: err.message,
      httpStatus: err.httpStatus,
      details: plainDetails(err.details),
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { cls: 'ComponentTrapError', code: 'component_trap', message, httpStatus: 502, details: {} };
}

export function fromWireError(wire: WireError): GreenticError {
  switch (wire.cls) {
    case 'ComponentLoadError':
      return new ComponentLoadError(wire.message, wire.details);
    case 'ComponentTrapError':
      return new ComponentTrapError(wire.message, wire.details);
    case 'ComponentTimeoutError':
      return new ComponentTimeoutError(wire.message, wire.details);
    case 'ComponentMemoryExceededError':
      return new ComponentMemoryExceededError(wire.message, wire.details);
    case 'ComponentBusyError':
      return new ComponentBusyError(wire.message, wire.details);
    case 'ComponentError':
      return new ComponentError(wire.code, wire.message, wire.httpStatus, wire.details);
    default:
      return new GreenticError(wire.code, wire.message, wire.httpStatus, wire.details);
  }
}

/** Details must survive structured clone: drop functions, keep plain data. */
function plainDetails(details: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(details)) {
    if (typeof v === 'function' || typeof v === 'symbol') continue;
    out[k] = v instanceof Error ? v.message : v;
  }
  return out;
}
