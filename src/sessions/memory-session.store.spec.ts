import { describe, expect, it } from 'vitest';
import { SessionConflictError } from '../common/errors.js';
import { MemorySessionStore } from './memory-session.store.js';
import { emptySession } from '../core/session-store.js';

const a = { tenantId: 'a', envId: 'dev', teamId: 'default' };
const b = { tenantId: 'b', envId: 'dev', teamId: 'default' };

describe('MemorySessionStore', () => {
  it('commits with compare-and-set and refuses a stale version', async () => {
    const s = new MemorySessionStore();
    const v1 = await s.commit(a, { ...emptySession('k'), data: { n: 1 } }, 0, 60);
    expect(v1).toBe(1);
    await expect(s.commit(a, { ...emptySession('k'), data: { n: 2 } }, 0, 60)).rejects.toBeInstanceOf(
      SessionConflictError,
    );
    expect((await s.load(a, 'k'))?.data).toEqual({ n: 1 });
    await s.close();
  });

  it('keeps tenants apart under the same session key', async () => {
    const s = new MemorySessionStore();
    await s.commit(a, { ...emptySession('same'), data: { who: 'a' } }, 0, 60);
    expect(await s.load(b, 'same')).toBeNull();
    expect(await s.markProcessed(a, 'same', 'm1', 60)).toBe(true);
    expect(await s.isProcessed(b, 'same', 'm1')).toBe(false);
    await s.close();
  });

  it('expires sessions after their TTL', async () => {
    const s = new MemorySessionStore();
    await s.commit(a, emptySession('t'), 0, 0.01);
    await new Promise((r) => setTimeout(r, 30));
    expect(await s.load(a, 't')).toBeNull();
    await s.close();
  });

  it('never runs two calls for one session at once, and keeps their order', async () => {
    const s = new MemorySessionStore();
    let running = 0;
    let maxRunning = 0;
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        s.runExclusive(a, 'k', async () => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await new Promise((r) => setTimeout(r, 2));
          order.push(i);
          running--;
        }),
      ),
    );
    expect(maxRunning).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await s.close();
  });

  it('keeps going after a call fails', async () => {
    const s = new MemorySessionStore();
    await expect(s.runExclusive(a, 'k', async () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    await expect(s.runExclusive(a, 'k', async () => 42)).resolves.toBe(42);
    await s.close();
  });
});
