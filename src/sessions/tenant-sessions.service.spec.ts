import { describe, expect, it } from 'vitest';
import { emptySession } from '../core/session-store.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { MemorySessionStore } from './memory-session.store.js';
import { TenantSessions } from './tenant-sessions.service.js';

const A: TenantCtx = Object.freeze({ tenantId: 'a', envId: 'dev', teamId: 'default' });
const B: TenantCtx = Object.freeze({ tenantId: 'b', envId: 'dev', teamId: 'default' });

describe('TenantSessions', () => {
  it("reads and writes only its own tenant's sessions, whatever key it is given", async () => {
    const store = new MemorySessionStore();
    const a = new TenantSessions(A, store);
    const b = new TenantSessions(B, store);
    // The same key in both tenants: two sessions.
    const key = 'shared:webhook:c:u';
    await b.commit({ ...emptySession(key), data: { owner: 'b' } }, 0, 60);
    expect(await a.load(key)).toBeNull();
    expect((await b.load(key))?.data).toEqual({ owner: 'b' });
    await a.commit({ ...emptySession(key), data: { owner: 'a' } }, 0, 60);
    expect((await a.load(key))?.data).toEqual({ owner: 'a' });
    expect((await b.load(key))?.data).toEqual({ owner: 'b' });
    // Deleting in A leaves B's session alone.
    await a.delete(key);
    expect(await a.load(key)).toBeNull();
    expect((await b.load(key))?.data).toEqual({ owner: 'b' });
    await store.close();
  });
});
