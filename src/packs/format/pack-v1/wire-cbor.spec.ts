import { describe, expect, it } from 'vitest';
import { canonicalWire, decodeWire, encodeWire, jsonToWire, wireToJson } from './wire-cbor.js';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));

describe('wire CBOR', () => {
  it('keeps map key order both ways', () => {
    const m = new Map<string, number>([
      ['zeta', 1],
      ['a', 2],
    ]);
    const bytes = encodeWire(m);
    expect(hex(bytes)).toBe('a2647a65746101616102');
    expect([...(decodeWire(bytes) as Map<string, unknown>).keys()]).toEqual(['zeta', 'a']);
  });

  it('writes integers shortest and floats in the shortest lossless width, as ciborium does', () => {
    expect(hex(encodeWire(23))).toBe('17');
    expect(hex(encodeWire(24))).toBe('1818');
    expect(hex(encodeWire(-1))).toBe('20');
    expect(hex(encodeWire(65536))).toBe('1a00010000');
    expect(hex(encodeWire(1.5))).toBe('f93e00');
    expect(hex(encodeWire(100000.5))).toBe('fa47c35040');
    expect(hex(encodeWire(0.1))).toBe('fb3fb999999999999a');
    for (const v of [1.5, 100000.5, 0.1, -2.25, 5.960464477539063e-8])
      expect(decodeWire(encodeWire(v))).toBe(v);
  });

  it('reads a leading self-describe tag and writes one on request', () => {
    const tagged = encodeWire(new Map([['a', 1]]), { selfDescribe: true });
    expect(hex(tagged)).toBe('d9d9f7a1616101');
    expect(decodeWire(tagged)).toEqual(new Map([['a', 1]]));
  });

  it('refuses what would make two readers disagree', () => {
    expect(() => decodeWire(unhex('a2616101616102'))).toThrow(/appears twice/);
    expect(() => decodeWire(unhex('a1016161'))).toThrow(/not a text string/);
    expect(() => decodeWire(unhex('c074323031'))).toThrow(/tag 0/);
    expect(() => decodeWire(unhex('a1616181d9d9f701'))).toThrow(/tag 55799/);
    expect(() => decodeWire(unhex('9f01ff'))).toThrow(/indefinite/);
    expect(() => decodeWire(unhex('0101'))).toThrow(/trailing/);
    expect(() => decodeWire(unhex('62c328'))).toThrow(/UTF-8/);
    expect(() => decodeWire(unhex('5a7fffffff'))).toThrow(/past the data|end of data/);
  });

  it('JSON values get sorted keys, structs keep their field order, canonical is length-first', () => {
    expect([...(jsonToWire({ b: 1, a: 2 }) as Map<string, unknown>).keys()]).toEqual(['a', 'b']);
    expect([...(jsonToWire({ b: 1, a: 2 }, true) as Map<string, unknown>).keys()]).toEqual(['b', 'a']);
    const c = canonicalWire(jsonToWire({ format: 1, files: 2, aa: 3 }, true)) as Map<string, unknown>;
    expect([...c.keys()]).toEqual(['aa', 'files', 'format']);
    const j = wireToJson(decodeWire(encodeWire(jsonToWire({ __proto__x: 1, ['__proto__']: { p: 1 } }))));
    expect(Object.getPrototypeOf(j)).toBe(Object.prototype);
  });
});
