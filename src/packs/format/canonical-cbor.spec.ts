import { describe, expect, it } from 'vitest';
import { CanonicalCborError, decodeCanonical, encodeCanonical } from './canonical-cbor.js';

describe('canonical CBOR', () => {
  it('orders keys shorter-first then bytewise, at every depth, whatever the insertion order', () => {
    const a = encodeCanonical({ zz: 1, a: { c: [1, 'x', null], bb: true }, meta: { packVersion: 1 } });
    const b = encodeCanonical({ meta: { packVersion: 1 }, a: { bb: true, c: [1, 'x', null] }, zz: 1 });
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    // map(3): "a", "zz", "meta" — the 1-byte key first, then the 2-byte one, then the 4-byte one.
    expect(Buffer.from(a).subarray(0, 3).toString('hex')).toBe('a36161');
    expect(decodeCanonical(a)).toEqual({
      a: { bb: true, c: [1, 'x', null] },
      zz: 1,
      meta: { packVersion: 1 },
    });
  });

  it('refuses bytes that are CBOR but not canonical', () => {
    // {"b": 1, "a": 2}: keys out of order.
    expect(() => decodeCanonical(new Uint8Array([0xa2, 0x61, 0x62, 1, 0x61, 0x61, 2]))).toThrow(
      /not canonical/,
    );
    // 1 written with a needless one-byte length.
    expect(() => decodeCanonical(new Uint8Array([0xa1, 0x61, 0x61, 0x18, 0x01]))).toThrow(CanonicalCborError);
  });

  it('refuses garbage and floats', () => {
    expect(() => decodeCanonical(new Uint8Array([0xff, 0x00, 0x13]))).toThrow(CanonicalCborError);
    expect(() => encodeCanonical({ x: 1.5 })).toThrow(/safe integers/);
  });
});
