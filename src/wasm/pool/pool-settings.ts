/**
 * Pool settings of one tenant: the process defaults (environment, RunnerConfig) overridden by the
 * tenant's `limits` in the bundle. Deadlines may be narrowed further per call (a node's
 * `timeout`).
 */
import { availableParallelism } from 'node:os';
import type { WorkerChannel } from './protocol.js';

export interface PoolSettings {
  /** Workers kept once the tenant has called a component (started lazily). */
  minWorkers: number;
  maxWorkers: number;
  /** Requests in flight per worker (pipelined: the worker takes the next without a wake-up). */
  pipeline: number;
  /** Calls waiting for a free slot before new ones fail with ComponentBusy. */
  queueSize: number;
  deadlineMs: number;
  memoryMb: number;
  /** Idle time after which workers above `minWorkers` stop. */
  idleMs: number;
  /** How calls reach workers: SharedArrayBuffer slots + Atomics, or a postMessage per call (benchmarks). */
  channel: WorkerChannel;
  /**
   * Most µs a worker polls for its next request before it sleeps, used only while requests follow
   * each other closely (adaptive): trades a little CPU for wake-up latency and warm caches.
   */
  spinUs: number;
  /**
   * Most µs the main thread polls for a result before it waits for a wake-up: only while this is
   * the one call in flight in the process, and only when recent calls answered within the budget.
   */
  mainSpinUs: number;
}

/**
 * Polling pays only with a core to spare: on two cores it took CPU from the main thread (webhook
 * bench +15 % without it; two NATS replicas used 4.1 → 2.4 ms of CPU per message), so it is on
 * only with more than two (docs/performance.md).
 */
const DEFAULT_SPIN_US = availableParallelism() > 2 ? 200 : 0;

export const DEFAULT_POOL_SETTINGS: PoolSettings = {
  minWorkers: 1,
  maxWorkers: 4,
  pipeline: 8,
  queueSize: 256,
  deadlineMs: 2_000,
  memoryMb: 128,
  idleMs: 60_000,
  channel: 'atomics',
  spinUs: DEFAULT_SPIN_US,
  mainSpinUs: DEFAULT_SPIN_US,
};

/** Tenant-level overrides, as the bundle's `limits` carry them (see BundleLimits). */
export interface TenantPoolLimits {
  componentDeadlineMs?: number;
  componentMemoryMb?: number;
  componentPoolMin?: number;
  componentPoolMax?: number;
  componentQueueSize?: number;
}

export function tenantSettings(base: PoolSettings, limits: TenantPoolLimits | undefined): PoolSettings {
  const s: PoolSettings = { ...base };
  if (limits?.componentDeadlineMs !== undefined) s.deadlineMs = limits.componentDeadlineMs;
  if (limits?.componentMemoryMb !== undefined) s.memoryMb = limits.componentMemoryMb;
  if (limits?.componentPoolMin !== undefined) s.minWorkers = limits.componentPoolMin;
  if (limits?.componentPoolMax !== undefined) s.maxWorkers = limits.componentPoolMax;
  if (limits?.componentQueueSize !== undefined) s.queueSize = limits.componentQueueSize;
  s.maxWorkers = Math.max(1, s.maxWorkers);
  s.minWorkers = Math.min(Math.max(0, s.minWorkers), s.maxWorkers);
  s.pipeline = Math.max(1, s.pipeline);
  s.queueSize = Math.max(0, s.queueSize);
  return s;
}

export function sameSettings(a: PoolSettings, b: PoolSettings): boolean {
  return (Object.keys(a) as Array<keyof PoolSettings>).every((k) => a[k] === b[k]);
}

/** The JS heap a worker may use: its instances' glue code and a componentize-js engine's host side. */
export function workerHeapMb(s: PoolSettings): number {
  return Math.max(64, s.memoryMb + 32);
}
