import type { CommitOptions, SessionRecord, SessionStore } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import type { OwnershipFence } from '../core/partition-ownership.js';
import { runnerMetrics, type RunnerMetrics } from './runner-metrics.js';
import { promiseOf } from '../common/promise-of.js';

/**
 * The session store seam with its latency histogram (load and commit, by store and outcome:
 * ok, conflict, error). No span: a commit is part of the message's hop, not a hop of its own.
 */
export function instrumentSessionStore(
  store: SessionStore,
  m: RunnerMetrics = runnerMetrics(),
): SessionStore {
  const kind = store.kind;
  // Not async: the store's own promise is handed back with one then() on it, so a load or commit
  // makes one promise here rather than three (each one a hook call when tracing is on).
  const timed = <R>(operation: 'load' | 'commit', fn: () => Promise<R>): Promise<R> => {
    const t0 = performance.now();
    const record = (outcome: string): void =>
      m.sessionStoreDuration.record(
        performance.now() - t0,
        m.labels.bound({ store: kind, operation, outcome }),
      );
    return promiseOf(fn).then(
      (r) => {
        record('ok');
        return r;
      },
      (e: unknown) => {
        record((e as { code?: string }).code === 'session_conflict' ? 'conflict' : 'error');
        throw e;
      },
    );
  };
  return {
    kind,
    get durable() {
      return store.durable;
    },
    load: (tenant: TenantCtx, key: string, fence?: OwnershipFence) =>
      timed('load', () => store.load(tenant, key, fence)),
    commit: (
      tenant: TenantCtx,
      record: SessionRecord,
      expectedVersion: number,
      ttlSeconds: number,
      options?: CommitOptions,
    ) => timed('commit', () => store.commit(tenant, record, expectedVersion, ttlSeconds, options)),
    delete: (tenant, key) => store.delete(tenant, key),
    runExclusive<T>(tenant: TenantCtx, key: string, fn: () => Promise<T>): Promise<T> {
      return store.runExclusive(tenant, key, fn);
    },
    markProcessed: (tenant, key, id, windowSeconds) => store.markProcessed(tenant, key, id, windowSeconds),
    isProcessed: (tenant, key, id) => store.isProcessed(tenant, key, id),
    health: () => store.health(),
    close: () => store.close(),
  };
}
