import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SessionConflictError } from '../src/common/errors.js';
import { emptySession, type SessionRecord } from '../src/core/session-store.js';
import {
  SessionBusyError,
  SessionLeaseLostError,
  SessionStoreUnavailableError,
} from '../src/sessions/redis/redis-errors.js';
import {
  RedisSessionStore,
  type RedisSessionStoreOptions,
} from '../src/sessions/redis/redis-session.store.js';
import type { TenantCtx } from '../src/core/tenant-ctx.js';
import { withoutEgress, withProcessed } from '../src/sessions/processed-window.js';
import { monitorRedis } from './support/redis-monitor.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  TestRedisServer,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';

/** RedisSessionStore against real Redis: the machine's for most tests, a private one for restarts and command counting. */

const A: TenantCtx = { tenantId: 'a', envId: 'dev', teamId: 'default' };
const B: TenantCtx = { tenantId: 'b', envId: 'dev', teamId: 'default' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const prefix = uniqueRedisPrefix('sessions');
let stores: RedisSessionStore[] = [];
let raw: Redis;

async function store(extra: Partial<RedisSessionStoreOptions> = {}): Promise<RedisSessionStore> {
  const s = await RedisSessionStore.connect({ url: SHARED_REDIS_URL, prefix, leaseMs: 3_000, ...extra });
  stores.push(s);
  return s;
}

function record(key: string, data: Record<string, unknown>, version = 0): SessionRecord {
  return { ...emptySession(key), version, data };
}

beforeAll(async () => {
  await requireRedis();
  raw = new Redis(SHARED_REDIS_URL);
});

afterEach(async () => {
  await Promise.all(stores.map((s) => s.close()));
  stores = [];
});

afterAll(async () => {
  await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
  raw?.disconnect();
});

describe('RedisSessionStore', () => {
  it('loads null, commits with compare-and-set, and round-trips snapshot, data and processed ids', async () => {
    const s = await store();
    expect(await s.load(A, 'k1')).toBeNull();
    const rec: SessionRecord = {
      ...record('k1', { order: [1] }),
      snapshot: { packId: 'p', packVersion: '1.0.0', flowId: 'f', nodeId: 'ask', state: { in: { q: 'x' } } },
      processed: [{ id: 'm1', at: 1, egress: { id: 'm1:reply' } }],
    };
    expect(await s.commit(A, rec, 0, 60)).toBe(1);
    const back = await s.load(A, 'k1');
    expect(back).toMatchObject({
      key: 'k1',
      version: 1,
      data: { order: [1] },
      snapshot: rec.snapshot,
      processed: rec.processed,
    });
    expect(await s.commit(A, { ...back!, data: { order: [1, 2] } }, 1, 60)).toBe(2);
    await expect(s.commit(A, { ...back!, data: { stale: true } }, 1, 60)).rejects.toBeInstanceOf(
      SessionConflictError,
    );
    expect((await s.load(A, 'k1'))!.data).toEqual({ order: [1, 2] });
  });

  it("applies the channel's TTL to the session", async () => {
    const s = await store();
    await s.commit(A, record('ttl', { x: 1 }), 0, 1);
    const pttl = await raw.pttl(`${prefix}:a/dev/default:{ttl}:s`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(1000);
    await sleep(1_200);
    expect(await s.load(A, 'ttl')).toBeNull();
  });

  it('keeps tenants apart: the same session key is two sessions under two key prefixes', async () => {
    const s = await store();
    await s.commit(A, record('same', { who: 'a' }), 0, 60);
    await s.commit(B, record('same', { who: 'b' }), 0, 60);
    expect((await s.load(A, 'same'))!.data).toEqual({ who: 'a' });
    expect((await s.load(B, 'same'))!.data).toEqual({ who: 'b' });
    expect(await raw.exists(`${prefix}:a/dev/default:{same}:s`, `${prefix}:b/dev/default:{same}:s`)).toBe(2);
    await s.delete(A, 'same');
    expect(await s.load(A, 'same')).toBeNull();
    expect(await s.load(B, 'same')).not.toBeNull();
  });

  it('never runs two holders of one session at once across replicas; other sessions run in parallel', async () => {
    const [r1, r2] = [await store(), await store()];
    let active = 0;
    let maxActive = 0;
    let otherOverlapped = false;
    let otherRunning = false;
    const work = (s: RedisSessionStore, i: number) =>
      s.runExclusive(A, 'busy', async () => {
        active++;
        maxActive = Math.max(maxActive, active);
        if (otherRunning) otherOverlapped = true;
        await sleep(5 + (i % 3) * 5);
        active--;
      });
    const other = r2.runExclusive(A, 'other', async () => {
      otherRunning = true;
      await sleep(150);
      otherRunning = false;
    });
    await Promise.all([...Array.from({ length: 20 }, (_, i) => work(i % 2 ? r1 : r2, i)), other]);
    expect(maxActive).toBe(1);
    expect(otherOverlapped).toBe(true);
  });

  it('refuses the commit of a holder whose lease was taken over (fencing token)', async () => {
    const [r1, r2] = [await store(), await store()];
    const leaseKey = `${prefix}:a/dev/default:{fenced}:lease`;
    const outcome = await r1.runExclusive(A, 'fenced', async () => {
      const mine = await raw.get(leaseKey);
      // As if r1 stalled past its lease: the lease is gone and r2 takes it and commits.
      await raw.del(leaseKey);
      await r2.runExclusive(A, 'fenced', async () => {
        expect(await raw.get(leaseKey)).not.toBe(mine);
        await r2.commit(A, record('fenced', { by: 'r2' }), 0, 60);
      });
      return r1.commit(A, record('fenced', { by: 'r1' }), 1, 60).catch((e: unknown) => e);
    });
    expect(outcome).toBeInstanceOf(SessionLeaseLostError);
    expect((await r1.load(A, 'fenced'))!.data).toEqual({ by: 'r2' });
  });

  it('hands out increasing fencing tokens and waits out the lease of a holder that died', async () => {
    const s = await store({ leaseMs: 1_000 });
    const leaseKey = `${prefix}:a/dev/default:{dead}:lease`;
    // A replica that died holding the lease: the key stays until its TTL runs out.
    await raw.set(leaseKey, '999:dead', 'PX', 800);
    const t0 = Date.now();
    const tokens: string[] = [];
    await s.runExclusive(A, 'dead', async () => void tokens.push((await raw.get(leaseKey))!));
    await s.runExclusive(A, 'dead', async () => void tokens.push((await raw.get(leaseKey))!));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    const [n1, n2] = tokens.map((t) => Number(t.split(':')[0]));
    expect(n2).toBe(n1! + 1);
    expect(await raw.exists(leaseKey)).toBe(0);
  });

  it('gives up waiting for a lease held elsewhere with a retryable SessionBusyError', async () => {
    const s = await store({ leaseMs: 5_000, leaseWaitMs: 300 });
    await raw.set(`${prefix}:a/dev/default:{held}:lease`, '1:other', 'PX', 5_000);
    const err = await s.runExclusive(A, 'held', async () => 'ran').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionBusyError);
    expect((err as SessionBusyError).httpStatus).toBe(503);
  });

  it('reads a record stored with its processed ids as a map (the earlier format) as the list', async () => {
    const s = await store();
    const legacy = {
      snapshot: null,
      data: { n: 1 },
      updatedAt: new Date(0).toISOString(),
      processed: { later: { at: 2 }, first: { at: 1, egress: { id: 'first:reply' } } },
    };
    await raw.hset(`${prefix}:a/dev/default:{legacy}:s`, 'v', '3', 'r', JSON.stringify(legacy));
    const back = await s.load(A, 'legacy');
    expect(back).toMatchObject({ version: 3, data: { n: 1 } });
    expect(back!.processed).toEqual([
      { id: 'first', at: 1, egress: { id: 'first:reply' } },
      { id: 'later', at: 2 },
    ]);
  });

  it("gives each load of a partition owner's cached session its own snapshot and data, and commits only the processed entries that changed", async () => {
    const s = await store();
    const hashKey = `${prefix}:a/dev/default:{cached}:s`;
    const fence = (await s.leases().claim('cache', 0, 'r1', 10_000))!;
    const t = Date.now();
    const first = withProcessed(undefined, { id: 'm1', at: t, egress: { id: 'm1:reply' } }, t);
    const v1 = await s.commit(A, { ...record('cached', { n: 1 }), processed: first }, 0, 60, { fence });
    const a = (await s.load(A, 'cached', fence))!;
    // A flow changing its copy in place (the commit above is refused or never made).
    (a.data as { n: number }).n = 99;
    const b = (await s.load(A, 'cached', fence))!;
    expect(b).toMatchObject({ version: v1, data: { n: 1 }, processed: first });
    // The next commit writes the new entry and m1 without its replies, and no other entry.
    const second = withoutEgress(withProcessed(b.processed, { id: 'm2', at: t + 1 }, t + 1), ['m1']);
    const scripts: string[][] = [];
    const monitor = await monitorRedis(SHARED_REDIS_URL, ({ args }) => {
      if (/^evalsha$/i.test(String(args[0])) && args[3] === hashKey) scripts.push(args);
    });
    await s.commit(A, { ...b, snapshot: null, data: { n: 2 }, processed: second }, v1, 60, { fence });
    await sleep(50);
    await monitor.stop();
    // EVALSHA, its sha, 3 and the keys, six arguments, then: delta, 2 fields set, none deleted.
    expect(scripts).toHaveLength(1);
    expect(scripts[0]!.slice(12)).toEqual([
      'delta',
      '2',
      'p:m1',
      JSON.stringify({ id: 'm1', at: t }),
      'p:m2',
      JSON.stringify({ id: 'm2', at: t + 1 }),
    ]);
    const hash = await raw.hgetall(hashKey);
    expect(JSON.parse(hash['r']!)).toEqual({ snapshot: null, data: { n: 2 }, updatedAt: expect.any(String) });
    expect(Object.keys(hash).sort()).toEqual(['p:m1', 'p:m2', 'r', 'v']);
    expect((await s.load(A, 'cached', fence))!.processed).toEqual([
      { id: 'm1', at: t },
      { id: 'm2', at: t + 1 },
    ]);
    // Another replica (no cache) reads the same window back from the fields, oldest first.
    const other = await store();
    expect((await other.load(A, 'cached'))!.processed).toEqual(second);
  });

  it('prunes the processed window in the hash: ids past the cap are deleted by the commit that drops them', async () => {
    const s = await store();
    const hashKey = `${prefix}:a/dev/default:{pruned}:s`;
    let version = 0;
    const t = Date.now();
    // Under a lease, as without a partition owner: each commit knows what its load read.
    for (let i = 0; i < 100; i++)
      await s.runExclusive(A, 'pruned', async () => {
        const rec = (await s.load(A, 'pruned')) ?? emptySession('pruned');
        const processed = withProcessed(rec.processed, { id: `m${i}`, at: t + i }, t + i);
        version = await s.commit(A, { ...rec, processed }, rec.version, 60, { last: true });
      });
    expect(version).toBe(100);
    const ids = Object.keys(await raw.hgetall(hashKey)).filter((f) => f.startsWith('p:'));
    const back = (await s.load(A, 'pruned'))!.processed!;
    // The window is pruned back to 64 past 80 entries: what the hash holds is exactly the window.
    expect(back.length).toBeGreaterThanOrEqual(64);
    expect(back.length).toBeLessThanOrEqual(80);
    expect(ids.sort()).toEqual(back.map((p) => `p:${p.id}`).sort());
    expect(back.at(-1)).toEqual({ id: 'm99', at: t + 99 });
    expect(back.map((p) => p.at)).toEqual([...back.map((p) => p.at)].sort((x, y) => x - y));
  });

  it('rewrites a record whose processed ids sit inside `r` (the earlier layout) as fields, and drops stray fields, on its next commit', async () => {
    const s = await store();
    const hashKey = `${prefix}:a/dev/default:{inline}:s`;
    const inline = {
      snapshot: null,
      data: { n: 1 },
      updatedAt: new Date(0).toISOString(),
      processed: [
        { id: 'a', at: 1 },
        { id: 'b', at: 2, egress: { id: 'b:reply' } },
      ],
    };
    // A field left by a commit the inline writer knew nothing of: not in its window any more.
    await raw.hset(
      hashKey,
      'v',
      '4',
      'r',
      JSON.stringify(inline),
      'p:stale',
      JSON.stringify({ id: 'stale', at: 0 }),
    );
    const loaded = (await s.load(A, 'inline'))!;
    expect(loaded.processed).toEqual([{ id: 'stale', at: 0 }, ...inline.processed]);
    const processed = withProcessed(
      loaded.processed!.filter((p) => p.id !== 'stale'),
      { id: 'c', at: 3 },
      3,
    );
    await s.commit(A, { ...loaded, processed }, 4, 60);
    const hash = await raw.hgetall(hashKey);
    expect(JSON.parse(hash['r']!)).not.toHaveProperty('processed');
    expect(
      Object.keys(hash)
        .filter((f) => f.startsWith('p:'))
        .sort(),
    ).toEqual(['p:a', 'p:b', 'p:c']);
    expect((await s.load(A, 'inline'))!.processed).toEqual([
      { id: 'a', at: 1 },
      { id: 'b', at: 2, egress: { id: 'b:reply' } },
      { id: 'c', at: 3 },
    ]);
  });

  it('remembers processed message ids per session for a window', async () => {
    const s = await store();
    expect(await s.isProcessed(A, 'idem', 'm1')).toBe(false);
    expect(await s.markProcessed(A, 'idem', 'm1', 1)).toBe(true);
    expect(await s.markProcessed(A, 'idem', 'm1', 1)).toBe(false);
    expect(await s.isProcessed(A, 'idem', 'm1')).toBe(true);
    expect(await s.isProcessed(B, 'idem', 'm1')).toBe(false);
    expect(await s.isProcessed(A, 'other', 'm1')).toBe(false);
    await sleep(1_100);
    expect(await s.isProcessed(A, 'idem', 'm1')).toBe(false);
  });
});

describe('RedisSessionStore on a private redis-server', () => {
  let server: TestRedisServer;

  beforeAll(async () => {
    server = await TestRedisServer.start();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('loads in one round trip (none under a lease), commits by EVALSHA, never KEYS or SCAN', async () => {
    // MONITOR shows each command with its source: the client's address, or "lua" inside a script.
    const sent: { cmd: string; fromClient: boolean }[] = [];
    const monitor = await monitorRedis(server.url, ({ args, source }) => {
      sent.push({ cmd: String(args[0]).toLowerCase(), fromClient: source !== 'lua' });
    });
    const s = await RedisSessionStore.connect({ url: server.url, prefix: 'p', leaseMs: 3_000 });
    stores.push(s);
    await sleep(100);
    sent.length = 0;
    for (let i = 0; i < 20; i++) {
      await s.runExclusive(A, 'count', async () => {
        const rec = (await s.load(A, 'count')) ?? emptySession('count');
        await s.commit(A, { ...rec, data: { i } }, rec.version, 60);
      });
    }
    for (let i = 0; i < 5; i++) await s.load(A, 'count');
    await sleep(200);
    await monitor.stop();
    const fromClient = sent.filter((c) => c.fromClient).map((c) => c.cmd);
    const count = (c: string) => fromClient.filter((x) => x === c).length;
    // Per message: take the lease (with the session), commit, release: three round trips, and
    // one EVAL per script on a fresh connection, EVALSHA after that. A load alone is one HGETALL.
    expect(count('eval')).toBe(3);
    expect(count('evalsha')).toBe(20 * 3 - 3);
    expect(count('hgetall')).toBe(5);
    expect(
      fromClient.filter(
        (c) => !['eval', 'evalsha', 'hgetall', 'info', 'client', 'ping', 'select'].includes(c),
      ),
    ).toEqual([]);
    expect(sent.some((c) => c.cmd === 'keys' || c.cmd === 'scan')).toBe(false);
    expect((await s.load(A, 'count'))!.version).toBe(20);
  });

  it('gives the lease back with the last commit: two round trips a message, and the next holder gets it at once', async () => {
    const sent: string[] = [];
    const monitor = await monitorRedis(server.url, ({ args, source }) => {
      if (source !== 'lua') sent.push(String(args[0]).toLowerCase());
    });
    const s = await RedisSessionStore.connect({ url: server.url, prefix: 'last', leaseMs: 3_000 });
    stores.push(s);
    await sleep(100);
    sent.length = 0;
    for (let i = 0; i < 10; i++) {
      await s.runExclusive(A, 'k', async () => {
        const rec = (await s.load(A, 'k')) ?? emptySession('k');
        await s.commit(A, { ...rec, data: { i } }, rec.version, 60, { last: true });
      });
    }
    await sleep(200);
    await monitor.stop();
    // Take the lease (with the session), commit-and-release: two scripts, no third call.
    expect(sent.filter((c) => c === 'eval' || c === 'evalsha')).toHaveLength(20);
    const check = new Redis(server.url);
    expect(await check.exists('last:a/dev/default:{k}:lease')).toBe(0);
    check.disconnect();
    expect((await s.load(A, 'k'))!.data).toEqual({ i: 9 });
  });

  it('still releases the lease when the last commit is refused', async () => {
    const s = await RedisSessionStore.connect({ url: server.url, prefix: 'refused', leaseMs: 30_000 });
    stores.push(s);
    const err = await s
      .runExclusive(A, 'k', async () => {
        // Version 5 is not stored: the compare-and-set refuses, so the script releases nothing.
        await s.commit(A, record('k', {}), 5, 60, { last: true });
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionConflictError);
    // The lease is gone anyway (released after the refused commit): the next holder need not wait 30 s.
    const t0 = Date.now();
    expect(await s.runExclusive(A, 'k', async () => 'next')).toBe('next');
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('goes down while Redis is down, fails fast with a retryable error, and recovers (scripts reloaded)', async () => {
    const s = await RedisSessionStore.connect({
      url: server.url,
      prefix: 'r',
      leaseMs: 3_000,
      commandTimeoutMs: 500,
    });
    stores.push(s);
    await s.commit(A, record('keep', { v: 1 }), 0, 600);
    expect((await s.health()).up).toBe(true);
    await server.down('SIGKILL');
    await sleep(200);
    expect((await s.health()).up).toBe(false);
    const err = await s.load(A, 'keep').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionStoreUnavailableError);
    await server.up();
    const deadline = Date.now() + 10_000;
    while (!(await s.health()).up && Date.now() < deadline) await sleep(100);
    expect((await s.health()).up).toBe(true);
    // Append-only with fsync always: the data survived; the script cache did not (NOSCRIPT → EVAL again).
    const back = await s.load(A, 'keep');
    expect(back!.data).toEqual({ v: 1 });
    expect(await s.commit(A, { ...back!, data: { v: 2 } }, back!.version, 600)).toBe(2);
  });
});
