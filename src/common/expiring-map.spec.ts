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

  it('keeps its queue bounded when the same keys are rewritten forever', () => {
    const m = new ExpiringMap<number, number>(10, 3_600_000, clock().now);
    for (let i = 0; i < 100_000; i++) m.set(i % 5, i);
    expect(m.size).toBe(5);
    const queue = (m as unknown as { queue: unknown[]; head: number }).queue;
    expect(queue.length).toBeLessThan(2_100);
    expect(m.get(4)).toBe(99_999);
  });
});
