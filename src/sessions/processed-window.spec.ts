import { describe, expect, it } from 'vitest';
import {
  findProcessed,
  IDEMPOTENCY_WINDOW_S,
  normalizeProcessed,
  PROCESSED_CAP,
  REPLAY_WINDOW_S,
  withoutEgress,
  withProcessed,
  type ProcessedWindow,
} from './processed-window.js';

const now = 1_000_000_000_000;

function windowOf(n: number, at = (i: number) => now - (n - i) * 1000): ProcessedWindow {
  let w: ProcessedWindow = [];
  for (let i = 0; i < n; i++) w = withProcessed(w, { id: `m${i}`, at: at(i) }, now);
  return w;
}

describe('processed window', () => {
  it('finds ids it holds, and nothing else', () => {
    const w = windowOf(10);
    expect(findProcessed(w, 'm3')).toEqual({ id: 'm3', at: now - 7000 });
    expect(findProcessed(w, 'm10')).toBeUndefined();
    expect(findProcessed(undefined, 'm3')).toBeUndefined();
  });

  it('never changes the window it was given', () => {
    const w = Object.freeze(windowOf(3));
    const next = withProcessed(w, { id: 'n', at: now }, now);
    expect(w).toHaveLength(3);
    expect(next.map((p) => p.id)).toEqual(['m0', 'm1', 'm2', 'n']);
  });

  it('keeps the newest ids up to the cap, and every id whose replies are unconfirmed', () => {
    let w = withProcessed(undefined, { id: 'unconfirmed', at: now - 5000, egress: { id: 'u:reply' } }, now);
    for (let i = 0; i < 200; i++) w = withProcessed(w, { id: `m${i}`, at: now - 1000 + i }, now);
    expect(findProcessed(w, 'unconfirmed')?.egress).toEqual({ id: 'u:reply' });
    expect(findProcessed(w, 'm199')).toBeDefined();
    expect(findProcessed(w, 'm0')).toBeUndefined();
    expect(w.filter((p) => !p.egress).length).toBeGreaterThanOrEqual(PROCESSED_CAP);
    expect(w.length).toBeLessThanOrEqual(PROCESSED_CAP + 17);
  });

  it('forgets ids past the idempotency window when it prunes', () => {
    const old = now - IDEMPOTENCY_WINDOW_S * 1000 - 1;
    let w = withProcessed(undefined, { id: 'ancient', at: old }, now);
    for (let i = 0; i < 100; i++) w = withProcessed(w, { id: `m${i}`, at: now }, now);
    expect(findProcessed(w, 'ancient')).toBeUndefined();
  });

  it('keeps replies for the replay window, then drops them (not the id) on a later commit', () => {
    const w = withProcessed(windowOf(2), { id: 'x', at: now, egress: { id: 'x:reply' } }, now);
    const soon = withProcessed(w, { id: 'y', at: now + 1000 }, now + 1000);
    expect(findProcessed(soon, 'x')?.egress).toEqual({ id: 'x:reply' });
    const later = now + REPLAY_WINDOW_S * 1000 + 1;
    const past = withProcessed(soon, { id: 'z', at: later }, later);
    expect(findProcessed(past, 'x')).toEqual({ id: 'x', at: now });
    expect(findProcessed(w, 'x')?.egress).toBeDefined();
  });

  it('drops the replies of the given ids (their publish landed), keeping the ids, and returns the same window when none holds any', () => {
    const w = withProcessed(windowOf(2), { id: 'x', at: now, egress: { id: 'x:reply' } }, now);
    const confirmed = withoutEgress(w, ['x']);
    expect(findProcessed(confirmed, 'x')).toEqual({ id: 'x', at: now });
    expect(findProcessed(w, 'x')?.egress).toBeDefined();
    expect(withoutEgress(confirmed, ['x', 'm0'])).toBe(confirmed);
    expect(withoutEgress(w, ['nope'])).toBe(w);
  });

  it('drops the replies of an older entry too, and of several ids at once, leaving the others', () => {
    let w: ProcessedWindow = windowOf(3);
    w = withProcessed(w, { id: 'a', at: now, egress: { id: 'a:reply' } }, now);
    w = withProcessed(w, { id: 'b', at: now + 1, egress: { id: 'b:reply' } }, now + 1);
    w = withProcessed(w, { id: 'c', at: now + 2, egress: { id: 'c:reply' } }, now + 2);
    const out = withoutEgress(w, ['a', 'c']);
    expect(out.map((p) => p.id)).toEqual(w.map((p) => p.id));
    expect(findProcessed(out, 'a')).toEqual({ id: 'a', at: now });
    expect(findProcessed(out, 'b')?.egress).toEqual({ id: 'b:reply' });
    expect(findProcessed(out, 'c')).toEqual({ id: 'c', at: now + 2 });
    expect(Object.isFrozen(findProcessed(out, 'a'))).toBe(true);
  });

  it('finds the same ids in a window it made and in that window after a store round trip', () => {
    let w = windowOf(100);
    w = withProcessed(w, { id: 'x', at: now, egress: { id: 'x:reply' } }, now);
    const stored = JSON.parse(JSON.stringify(w)) as ProcessedWindow;
    for (const id of ['x', 'm99', 'm60', 'm35', 'm34', 'm0', 'nope', '']) {
      expect(findProcessed(w, id), id).toEqual(findProcessed(stored, id));
    }
    expect(findProcessed(w, 'm99')?.id).toBe('m99');
    expect(findProcessed(w, 'm0')).toBeUndefined();
    const grown = withProcessed(stored, { id: 'y', at: now }, now);
    expect([findProcessed(grown, 'm99')?.id, findProcessed(grown, 'y')?.id]).toEqual(['m99', 'y']);
  });

  it('answers every lookup as a scan of the window would, through commits, prunes, expiring replies and stale windows', () => {
    // What findProcessed must answer: the newest entry holding the id.
    const scan = (w: ProcessedWindow, id: string) => [...w].reverse().find((p) => p.id === id);
    let t = now;
    let w: ProcessedWindow = [];
    const stale: ProcessedWindow[] = [];
    for (let i = 0; i < 400; i++) {
      t += 7_000; // 400 turns of 7 s pass the replay window: replies are dropped from old entries
      const entry =
        i % 3 === 0 ? { id: `m${i}`, at: t, egress: { id: `m${i}:reply` } } : { id: `m${i}`, at: t };
      // A turn as MessageProcessor takes it: look the id up, then commit a new window.
      expect(findProcessed(w, entry.id)).toBeUndefined();
      if (i % 10 === 0) stale.push(w);
      let next: ProcessedWindow = withProcessed(w, entry, t);
      if (i % 3 === 0) next = withoutEgress(next, [`m${i - 3}`, 'nope']);
      w = next;
      for (const id of [
        entry.id,
        `m${i - 1}`,
        `m${i - 3}`,
        `m${i - 70}`,
        `m${i - 90}`,
        `m${i - 300}`,
        'nope',
      ])
        expect(findProcessed(w, id), `${id} after turn ${i}`).toBe(scan(w, id));
    }
    expect(w.length).toBeGreaterThan(PROCESSED_CAP - 1);
    // Windows a session moved on from still answer for themselves (their index went to the next).
    for (const old of stale)
      for (const p of [old[0], old[old.length - 1], { id: 'm399' }])
        if (p) expect(findProcessed(old, p.id), p.id).toBe(scan(old, p.id));
    // A window read back from a store (no index yet) answers the same.
    const stored = JSON.parse(JSON.stringify(w)) as ProcessedWindow;
    for (const p of w) expect(findProcessed(stored, p.id)).toEqual(p);
  });

  it('reads records stored as a map of ids, in time order', () => {
    const legacy = { b: { at: 2 }, a: { at: 1, egress: { id: 'a:reply' } } };
    expect(normalizeProcessed(legacy)).toEqual([
      { id: 'a', at: 1, egress: { id: 'a:reply' } },
      { id: 'b', at: 2 },
    ]);
    expect(normalizeProcessed([{ id: 'a', at: 1 }])).toEqual([{ id: 'a', at: 1 }]);
    expect(normalizeProcessed(undefined)).toBeUndefined();
  });
});
