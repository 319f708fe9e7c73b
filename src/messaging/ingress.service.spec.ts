import { describe, expect, it } from 'vitest';
import { capRaw } from './ingress.service.js';

/** A body of `n` numbers in the form that grows most when serialised again. */
const growing = (n: number) => `[${Array.from({ length: n }, () => '1e20').join(',')}]`;

describe('capRaw', () => {
  it('keeps a payload under the cap, with or without the size of its source', () => {
    const raw = { userId: 'u1', text: 'Paris' };
    const src = JSON.stringify(raw);
    expect(capRaw(raw, Buffer.byteLength(src))).toBe(raw);
    expect(capRaw(raw)).toBe(raw);
  });

  it('measures a payload whose source could grow past the cap, and replaces it when it does', () => {
    // 4,000 bytes of `1e20` come back as 17,600 characters: over the 16 KiB cap.
    const src = growing(800);
    const raw: unknown = JSON.parse(src);
    expect(JSON.stringify(raw).length).toBeGreaterThan(16 * 1024);
    expect(capRaw(raw, Buffer.byteLength(src))).toEqual({
      truncated: true,
      bytes: JSON.stringify(raw).length,
    });
  });

  it('never lets a small source slip a payload past the cap: worst-case growth stays under it', () => {
    // The largest source the shortcut trusts, made of the worst-growing tokens.
    let n = 1;
    while (Buffer.byteLength(growing(n + 1)) * 6 <= 16 * 1024) n++;
    const src = growing(n);
    expect(Buffer.byteLength(src) * 6).toBeLessThanOrEqual(16 * 1024);
    expect(JSON.stringify(JSON.parse(src)).length).toBeLessThanOrEqual(16 * 1024);
  });

  it('replaces a payload that cannot be serialised (too deep, cyclic) with a note, never throwing', () => {
    const d = 120_000;
    const deep: unknown = JSON.parse('['.repeat(d) + ']'.repeat(d));
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    for (const raw of [deep, cyclic]) {
      expect(capRaw(raw)).toEqual({ truncated: true, unserialisable: true });
      expect(capRaw(raw, 100_000)).toEqual({ truncated: true, unserialisable: true });
    }
  });

  it('replaces an oversized payload that came without a source size', () => {
    const raw = { blob: 'x'.repeat(20_000) };
    expect(capRaw(raw)).toEqual({ truncated: true, bytes: JSON.stringify(raw).length });
  });
});
