import { describe, expect, it } from 'vitest';
import { MemoryRateLimitStore } from './memory-rate-limit.store.js';

const perSecond = (rate: number, burst = rate) => ({ rate, perMs: 1_000, burst });

describe('MemoryRateLimitStore (token bucket)', () => {
  it('allows a burst of `burst`, then refuses with the time until the next token', async () => {
    let now = 1_000_000;
    const store = new MemoryRateLimitStore(() => now);
    const b = [{ key: 't', policy: perSecond(5) }];
    const decisions = [];
    for (let i = 0; i < 15; i++) decisions.push(await store.take(b));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(5);
    expect(decisions.map((d) => d.remaining).slice(0, 5)).toEqual([4, 3, 2, 1, 0]);
    expect(decisions[5]).toEqual({ allowed: false, retryAfterMs: 200, remaining: 0 });
    now += 200;
    expect((await store.take(b)).allowed).toBe(true);
    expect((await store.take(b)).allowed).toBe(false);
    now += 10_000;
    // Refill stops at the burst: a long quiet spell does not bank more than `burst` tokens.
    const after = [];
    for (let i = 0; i < 8; i++) after.push((await store.take(b)).allowed);
    expect(after.filter(Boolean)).toHaveLength(5);
  });

  it('takes from every bucket or from none', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(() => now);
    const tenant = { key: 'tenant', policy: perSecond(10) };
    const channel = { key: 'channel', policy: perSecond(2) };
    expect((await store.take([tenant, channel])).allowed).toBe(true);
    expect((await store.take([tenant, channel])).allowed).toBe(true);
    const refused = await store.take([tenant, channel]);
    expect(refused).toMatchObject({ allowed: false, retryAfterMs: 500 });
    // The refused message left the tenant bucket alone: 8 tokens remain, not 7.
    const other = await store.take([tenant]);
    expect(other).toEqual({ allowed: true, retryAfterMs: 0, remaining: 7 });
    now += 500;
    expect((await store.take([tenant, channel])).allowed).toBe(true);
  });

  it('reports the longest wait of the buckets that are short', async () => {
    const store = new MemoryRateLimitStore(() => 0);
    const slow = { key: 'slow', policy: { rate: 1, perMs: 60_000, burst: 1 } };
    const fast = { key: 'fast', policy: perSecond(1) };
    await store.take([slow, fast]);
    expect(await store.take([slow, fast])).toMatchObject({ allowed: false, retryAfterMs: 60_000 });
  });

  it('forgets buckets that are full again once it holds many', async () => {
    let now = 0;
    const store = new MemoryRateLimitStore(() => now);
    for (let i = 0; i < 10_001; i++) store.takeSync([{ key: `k${i}`, policy: perSecond(1) }]);
    now += 2_000;
    store.takeSync([{ key: 'fresh', policy: perSecond(1) }]);
    expect(store.size).toBe(1);
  });

  it('walks its buckets at most once a second while more keys than it prunes at are in use', () => {
    let now = 0;
    const store = new MemoryRateLimitStore(() => now);
    const buckets = (store as unknown as { buckets: Map<string, unknown> }).buckets;
    let walks = 0;
    const entries = buckets.entries.bind(buckets);
    buckets[Symbol.iterator] = () => {
      walks++;
      return entries();
    };
    // 12,000 keys, each taking 2 tokens a second at a refill of 1: none is full again, so a
    // prune frees nothing.
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 12_000; i++) store.takeSync([{ key: `k${i}`, policy: perSecond(1, 5) }], 2);
      now += 1_000;
    }
    expect(store.size).toBe(12_000);
    expect(walks).toBeLessThanOrEqual(3);
  });
});
