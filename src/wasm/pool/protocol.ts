/**
 * What the main thread and a component worker say to each other, shared by both sides.
 *
 * The call channel: requests and results travel through two MessagePorts that nobody listens
 * on; the receiver takes them with `receiveMessageOnPort` (synchronous, no event-loop turn). A
 * SharedArrayBuffer of counters says how many there are and wakes the other side with
 * `Atomics.notify`: the worker sleeps in `Atomics.wait`, the main thread in `Atomics.waitAsync`
 * (never blocking its event loop). Both sides keep FIFO order, so the n-th result answers the
 * n-th request. Under load a worker finds its next request already posted and main drains several
 * results per wake-up: that is the batching, with no timer and no extra copy.
 *
 * Host calls go the other way: the worker posts on `hostCalls` (main listens) and, for calls that
 * return something, sleeps on the HOST counter until main posts the answer on `hostAnswers`.
 */
import type { ComponentCallContext, ComponentOperation, ComponentWorld } from '../component-runtime.js';
import {
  ComponentBusyError,
  ComponentError,
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  ComponentTrapError,
  GreenticError,
} from '../../common/errors.js';
import type { TenantCtx } from '../../tenancy/tenant-ctx.js';

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
  /** 1 while the worker sleeps in Atomics.wait (main skips notify otherwise). */
  SLEEPING: 4,
} as const;

export const CTL_BYTES = 64;

export type WorkerChannel = 'atomics' | 'message';

/** What a worker starts with (its `workerData`). */
export interface WorkerInit {
  workerId: number;
  tenantId: string;
  channel: WorkerChannel;
  ctl: SharedArrayBuffer;
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
  op: string;
  input: unknown;
  ctx: WireCallContext;
  deadlineMs: number;
}

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
  | 'telemetry.event';

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
