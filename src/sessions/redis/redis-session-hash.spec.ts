import { describe, expect, it } from 'vitest';
import type { ProcessedMessage } from '../../core/session-store.js';
import { withoutEgress, withProcessed } from '../processed-window.js';
import { hashOf, processedWrite, readSessionHash } from './redis-session-hash.js';

const entry = (id: string, at: number, egress?: Record<string, unknown>): ProcessedMessage =>
  Object.freeze(egress ? { id, at, egress } : { id, at });

describe('readSessionHash', () => {
  it('is null for a missing hash', () => {
    expect(readSessionHash({})).toBeNull();
  });

  it('reads the record from `r` and the processed window from the `p:` fields, oldest first', () => {
    const hash = {
      v: '7',
      r: JSON.stringify({ snapshot: null, data: { n: 1 }, updatedAt: 'then' }),
      'p:b': JSON.stringify({ id: 'b', at: 2, egress: { id: 'b:reply' } }),
      'p:a': JSON.stringify({ id: 'a', at: 1 }),
    };
    const s = readSessionHash(hash)!;
    expect(s.version).toBe(7);
    expect(s.exact).toBe(true);
    expect(s.record).toEqual({
      snapshot: null,
      data: { n: 1 },
      updatedAt: 'then',
      processed: [
        { id: 'a', at: 1 },
        { id: 'b', at: 2, egress: { id: 'b:reply' } },
      ],
    });
    // Frozen: commits tell entries by identity, so none may change in place.
    expect(s.record.processed!.every((p) => Object.isFrozen(p))).toBe(true);
  });

  it('merges ids stored inside `r` (the earlier layout, list or map) with the fields, and says the hash is not exact', () => {
    const list = readSessionHash({
      v: '1',
      r: JSON.stringify({ snapshot: null, data: {}, updatedAt: 'x', processed: [{ id: 'a', at: 1 }] }),
      'p:b': JSON.stringify({ id: 'b', at: 2 }),
    })!;
    expect(list.exact).toBe(false);
    expect(list.record.processed).toEqual([
      { id: 'a', at: 1 },
      { id: 'b', at: 2 },
    ]);
    const map = readSessionHash({
      r: JSON.stringify({ snapshot: null, data: {}, updatedAt: 'x', processed: { a: { at: 1 } } }),
    })!;
    expect(map.version).toBe(0);
    expect(map.record.processed).toEqual([{ id: 'a', at: 1 }]);
  });
});

describe('hashOf', () => {
  it("turns a script's flat HGETALL reply into what ioredis's hgetall gives", () => {
    expect(hashOf(['v', '1', 'r', '{}'])).toEqual({ v: '1', r: '{}' });
    expect(hashOf([])).toEqual({});
    expect(hashOf(undefined)).toEqual({});
  });
});

describe('processedWrite', () => {
  it('writes every entry, and has the script drop every other field, when what the hash holds is unknown', () => {
    const next = [entry('a', 1), entry('b', 2)];
    expect(processedWrite(undefined, next)).toEqual({
      full: true,
      set: ['p:a', JSON.stringify(next[0]), 'p:b', JSON.stringify(next[1])],
      del: [],
    });
    expect(processedWrite(undefined, undefined)).toEqual({ full: true, set: [], del: [] });
  });

  it("writes a message's new entry and the entry that dropped its replies, nothing else", () => {
    const prev = withProcessed([entry('a', 1), entry('b', 2, { id: 'b:reply' })], entry('c', 3), 3);
    const next = withoutEgress(withProcessed(prev, entry('d', 4), 4), ['b']);
    expect(processedWrite(prev, next)).toEqual({
      full: false,
      set: ['p:b', JSON.stringify({ id: 'b', at: 2 }), 'p:d', JSON.stringify({ id: 'd', at: 4 })],
      del: [],
    });
  });

  it('deletes the ids a prune dropped', () => {
    const now = Date.now();
    let prev: readonly ProcessedMessage[] = [];
    for (let i = 0; i < 80; i++) prev = withProcessed(prev, entry(`m${i}`, now + i), now + i);
    const next = withProcessed(prev, entry('m80', now + 80), now + 80);
    const w = processedWrite(prev, next);
    expect(next).toHaveLength(64);
    expect(w.set).toEqual(['p:m80', JSON.stringify({ id: 'm80', at: now + 80 })]);
    expect(w.del).toEqual(Array.from({ length: 17 }, (_, i) => `p:m${i}`));
  });

  it('still writes an entry that moved (the script deletes before it writes)', () => {
    const [a, b] = [entry('a', 1), entry('b', 2)];
    expect(processedWrite([a, b], [b, a])).toEqual({
      full: false,
      set: ['p:a', JSON.stringify(a)],
      del: ['p:a'],
    });
  });

  it('writes nothing for a window that did not change', () => {
    const prev = [entry('a', 1)];
    expect(processedWrite(prev, prev)).toEqual({ full: false, set: [], del: [] });
  });
});
