import { describe, expect, it } from 'vitest';
import { recordMetrics } from '../../test/support/telemetry-recorders.js';
import { SessionConflictError } from '../common/errors.js';
import { emptySession } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { MemorySessionStore } from '../sessions/memory-session.store.js';
import { instrumentSessionStore } from './instrumented-session-store.js';

const ACME: TenantCtx = { tenantId: 'acme', envId: 'dev' };

describe('instrumentSessionStore', () => {
  it('times loads and commits by outcome, conflicts apart, and keeps the store semantics', async () => {
    const inner = new MemorySessionStore();
    const { calls, metrics } = recordMetrics();
    const store = instrumentSessionStore(inner, metrics);
    expect([store.kind, store.durable]).toEqual([inner.kind, inner.durable]);
    const rec = (await store.load(ACME, 'k')) ?? emptySession('k');
    const v = await store.runExclusive(ACME, 'k', () =>
      store.commit(ACME, { ...rec, data: { a: 1 } }, 0, 60),
    );
    expect(v).toBe(1);
    await expect(store.commit(ACME, rec, 0, 60)).rejects.toBeInstanceOf(SessionConflictError);
    expect((await inner.load(ACME, 'k'))?.data).toEqual({ a: 1 });
    expect(calls.map((c) => [c.attrs['operation'], c.attrs['outcome'], c.attrs['store']])).toEqual([
      ['load', 'ok', 'memory'],
      ['commit', 'ok', 'memory'],
      ['commit', 'conflict', 'memory'],
    ]);
    await store.delete(ACME, 'k');
    expect(await inner.load(ACME, 'k')).toBeNull();
    await inner.close();
  });
});
