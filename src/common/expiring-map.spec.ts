import { describe, expect, it } from 'vitest';
import { ExpiringMap } from './expiring-map.js';

function clock(start = 0) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe('ExpiringMap', () => {
  it('forgets entries after the TTL', () => {
    const c = clock();
    const m = new ExpiringMap<string, number>(100, 1_000, c.now);
    m.set('a', 1);
    c.t = 999;
    expect(m.get('a')).toBe(1);
    c.t = 1_000;
    expect(m.get('a')).toBeUndefined();
    expect(m.has('a')).toBe(false);
  });

  it('keeps at most maxEntries, dropping the oldest first', () => {
    const m = new ExpiringMap<number, number>(3, 60_000, clock().now);
    for (let i = 0; i < 10; i++) m.set(i, i);
    expect(m.size).toBe(3);
    expect([7, 8, 9].map((i) => m.get(i))).toEqual([7, 8, 9]);
    expect(m.get(6)).toBeUndefined();
  });

  it('counts a rewritten key from its last write, for both age and order', () => {
    const c = clock();
    const m = new ExpiringMap<string, number>(2, 1_000, c.now);
    m.set('a', 1);
    m.set('b', 2);
    m.set('a', 3); // a is now the newest
    m.set('c', 4); // evicts b, the oldest, not a
    expect(m.get('a')).toBe(3);
    expect(m.get('b')).toBeUndefined();
    c.t = 900;
    m.set('a', 5);
    c.t = 1_500; // c (written at 0) is past its TTL, a (written at 900) is not
    m.set('d', 6);
    expect(m.get('c')).toBeUndefined();
    expect(m.get('a')).toBe(5);
  });

  it('keeps the latest values and its order when the same keys are rewritten forever', () => {
    const m = new ExpiringMap<number, number>(10, 3_600_000, clock().now);
    for (let i = 0; i < 100_000; i++) m.set(i % 5, i);
    expect(m.size).toBe(5);
    expect([0, 1, 2, 3, 4].map((k) => m.get(k))).toEqual([99_995, 99_996, 99_997, 99_998, 99_999]);
    // Ten new keys: the five rewritten ones are now the oldest writes, so they make room.
    for (let k = 5; k < 15; k++) m.set(k, k);
    expect(m.size).toBe(10);
    expect([0, 1, 2, 3, 4].map((k) => m.get(k))).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
    expect([5, 14].map((k) => m.get(k))).toEqual([5, 14]);
  });

  it('rewriting a key does not push out another one', () => {
    const m = new ExpiringMap<string, number>(2, 60_000, clock().now);
    m.set('a', 1);
    m.set('b', 2);
    m.set('b', 3);
    expect([m.get('a'), m.get('b'), m.size]).toEqual([1, 3, 2]);
  });

  it('grows its ring past the first slots without losing order or entries', () => {
    const c = clock();
    const m = new ExpiringMap<number, number>(5_000, 1_000, c.now);
    // Wrap the first ring around before it grows: a few early entries expire and are evicted.
    for (let i = 0; i < 600; i++) m.set(i, i);
    c.t = 500;
    for (let i = 600; i < 4_000; i++) m.set(i, i);
    expect(m.size).toBe(4_000);
    c.t = 1_000; // the first 600 are past their TTL, the rest are not
    m.set(-1, -1);
    expect(m.get(599)).toBeUndefined();
    expect(m.get(600)).toBe(600);
    expect(m.get(3_999)).toBe(3_999);
    expect(m.size).toBe(3_401);
  });

  it('adds a key only when it is absent or expired', () => {
    const c = clock();
    const m = new ExpiringMap<string, number>(10, 1_000, c.now);
    expect(m.addIfAbsent('a', 1)).toBe(true);
    expect(m.addIfAbsent('a', 2)).toBe(false);
    expect(m.get('a')).toBe(1);
    c.t = 1_000;
    expect(m.addIfAbsent('a', 3)).toBe(true);
    expect([m.get('a'), m.size]).toEqual([3, 1]);
  });
});
