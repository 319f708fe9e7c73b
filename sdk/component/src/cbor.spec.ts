import { Encoder, type Options } from 'cbor-x';
import { describe, expect, it } from 'vitest';
import { CborEncoder, CborError, decodeCbor, encodeCbor } from './cbor.js';

// The runner's own codec settings (src/wasm/cbor.ts), without int64AsNumber: the SDK decodes
// integers past 2^53 as bigint, like cbor-x does by default.
const host = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  copyBuffers: true,
} as Options);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

const CASES: Array<[string, unknown]> = [
  ['zero', 0],
  ['small ints', [1, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1]],
  ['negative ints', [-1, -24, -25, -256, -257, -65536, -65537, -(2 ** 32)]],
  ['ints past 32 bits (float64, as cbor-x)', [2 ** 32, 2 ** 40 + 7, Number.MAX_SAFE_INTEGER, -(2 ** 32) - 1]],
  ['negative zero', -0],
  ['floats', [0.5, 1.5, -2.25, 0.1, 1e300, -1e-300, 3.4028234663852886e38, Number.EPSILON]],
  ['non-finite floats', [NaN, Infinity, -Infinity]],
  [
    'bigints',
    [5n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n, -(2n ** 53n) - 1n, -(2n ** 63n) - 1n, -(2n ** 64n) + 1n],
  ],
  ['bigints past 64 bits (bignum tags)', [2n ** 64n, -(2n ** 64n), 2n ** 100n + 3n, -(2n ** 90n)]],
  ['null, bools, undefined', [null, true, false, undefined]],
  ['empty text', ''],
  ['ascii text', 'hello'],
  [
    'text at head boundaries',
    ['x'.repeat(23), 'x'.repeat(24), 'x'.repeat(255), 'x'.repeat(256), 'y'.repeat(70000)],
  ],
  ['utf-8 text', ['é', '°C', 'Weather for Paris: 22°C', '日本語のテキスト', '😀 emoji', 'ż'.repeat(40)]],
  [
    'text whose UTF-8 bound needs a longer head than its length',
    ['é'.repeat(10), 'a'.repeat(9), 'b'.repeat(90)],
  ],
  ['bytes', [new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(300).fill(7)]],
  ['arrays', [[], [1, [2, [3, []]]], new Array(30).fill('a'), new Array(70000).fill(1)]],
  ['maps', { a: 1, b: { c: null, d: [true, false] }, 'key with space': 'v', é: 'ü' }],
  ['map of 24 and 300 keys', [mapOf(24), mapOf(300)]],
  ['undefined values in maps', { a: undefined, b: 1 }],
  [
    'a node-world envelope payload',
    {
      q: 'Paris',
      days: 3,
      location: { name: 'Paris', lat: 48.8566, lon: 2.3522 },
      forecast: [{ day: 0, max: 22, min: 12, text: 'Light rain' }],
      raw: new Uint8Array([0, 255]),
      deadline: 2n ** 60n,
    },
  ],
];

function mapOf(n: number): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = 0; i < n; i++) o[`k${i}`] = i;
  return o;
}

/** A small seeded generator, so a failing value can be reproduced. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomValue(r: () => number, depth: number): unknown {
  const pick = Math.floor(r() * (depth > 3 ? 8 : 11));
  const int = (): number => {
    const bits = [5, 8, 16, 32, 33, 53][Math.floor(r() * 6)]!;
    const n = Math.floor(r() * 2 ** bits);
    return r() < 0.5 ? n : -n;
  };
  switch (pick) {
    case 0:
      return int();
    case 1:
      return (r() - 0.5) * 10 ** Math.floor(r() * 40 - 20);
    case 2: {
      const big = BigInt(Math.floor(r() * 2 ** 32)) * 2n ** 32n + BigInt(Math.floor(r() * 2 ** 32));
      return r() < 0.5 ? big : -big - 1n;
    }
    case 3: {
      const len = Math.floor(r() * 40);
      let s = '';
      for (let i = 0; i < len; i++) {
        const c = r();
        s +=
          c < 0.7 ? String.fromCharCode(32 + Math.floor(r() * 95)) : c < 0.9 ? 'é' : c < 0.97 ? '語' : '😀';
      }
      return s;
    }
    case 4:
      return Uint8Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * 256));
    case 5:
      return null;
    case 6:
      return r() < 0.5;
    case 7:
      return 'x'.repeat(Math.floor(r() * 300));
    case 8:
    case 9: {
      const o: Record<string, unknown> = {};
      const n = Math.floor(r() * 8);
      for (let i = 0; i < n; i++) o[`f${Math.floor(r() * 1000)}`] = randomValue(r, depth + 1);
      return o;
    }
    default:
      return Array.from({ length: Math.floor(r() * 8) }, () => randomValue(r, depth + 1));
  }
}

/** What decoding gives back: bigints within the safe range come back as numbers. */
function normalised(v: unknown): unknown {
  if (Object.is(v, -0)) return 0;
  if (typeof v === 'bigint')
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(v) : v;
  if (Array.isArray(v)) return v.map(normalised);
  if (v instanceof Uint8Array) return v;
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalised(x)]));
  return v;
}

describe('SDK CBOR codec', () => {
  for (const [name, value] of CASES) {
    it(`encodes ${name} byte for byte as cbor-x does, and decodes it back`, () => {
      const ours = encodeCbor(value);
      expect(hex(ours)).toBe(hex(host.encode(value)));
      expect(decodeCbor(ours)).toEqual(normalised(value));
      // and reads what cbor-x wrote as cbor-x does, except that a 64-bit head holding a safe
      // integer gives a number (cbor-x gives a bigint for every 64-bit head)
      expect(decodeCbor(host.encode(value))).toEqual(normalised(host.decode(host.encode(value))));
    });
  }

  it('matches cbor-x on 2,000 random node-world values and round-trips them', () => {
    const r = rng(21);
    for (let i = 0; i < 2000; i++) {
      const v = randomValue(r, 0);
      const ours = encodeCbor(v);
      expect(hex(ours), `value #${i}`).toBe(hex(host.encode(v)));
      expect(decodeCbor(ours), `value #${i}`).toEqual(normalised(v));
    }
  });

  it('writes map keys from its key cache exactly as the first time (and keys past the cache as usual)', () => {
    const value = { day: 1, high_c: 22, é: 'ü', ['k'.repeat(40)]: true, nested: { day: 2 } };
    const first = hex(encodeCbor(value));
    expect(first).toBe(hex(host.encode(value)));
    expect(hex(encodeCbor(value))).toBe(first);
    expect(hex(new CborEncoder(4).encode(value))).toBe(first);
  });

  it('decodes integers past 2^53 as bigint and keeps safe 64-bit heads as numbers', () => {
    expect(decodeCbor(Uint8Array.from(Buffer.from('1b0020000000000001', 'hex')))).toBe(2n ** 53n + 1n);
    expect(decodeCbor(Uint8Array.from(Buffer.from('1bffffffffffffffff', 'hex')))).toBe(2n ** 64n - 1n);
    expect(decodeCbor(Uint8Array.from(Buffer.from('3bffffffffffffffff', 'hex')))).toBe(-(2n ** 64n));
    expect(decodeCbor(Uint8Array.from(Buffer.from('1b001fffffffffffff', 'hex')))).toBe(
      Number.MAX_SAFE_INTEGER,
    );
    expect(decodeCbor(Uint8Array.from(Buffer.from('3b001ffffffffffffe', 'hex')))).toBe(
      Number.MIN_SAFE_INTEGER,
    );
    expect(decodeCbor(Uint8Array.from(Buffer.from('3b001fffffffffffff', 'hex')))).toBe(-(2n ** 53n));
  });

  it('decodes what other encoders write: half and single floats, indefinite lengths, tags, bignums', () => {
    const d = (h: string): unknown => decodeCbor(Uint8Array.from(Buffer.from(h, 'hex')));
    expect(d('f93e00')).toBe(1.5);
    expect(d('f97c00')).toBe(Infinity);
    expect(d('f90001')).toBe(2 ** -24);
    expect(d('fa47c35000')).toBe(100000);
    expect(d('9f0102ff')).toEqual([1, 2]);
    expect(d('bf616101ff')).toEqual({ a: 1 });
    expect(d('7f626865636c6c6fff')).toBe('hello');
    expect(d('5f4201024103ff')).toEqual(new Uint8Array([1, 2, 3]));
    expect(d('c074323031332d30332d32315432303a30343a30305a')).toBe('2013-03-21T20:04:00Z');
    expect(d('c249010000000000000000')).toBe(2n ** 64n);
    expect(d('a10102')).toEqual({ '1': 2 });
  });

  it('keeps a __proto__ key as data', () => {
    const o = decodeCbor(Uint8Array.from(Buffer.from('a1695f5f70726f746f5f5fa1617801', 'hex'))) as Record<
      string,
      unknown
    >;
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(Object.keys(o)).toEqual(['__proto__']);
  });

  it('refuses truncated, trailing and reserved input with a CborError', () => {
    const d = (h: string) => () => decodeCbor(Uint8Array.from(Buffer.from(h, 'hex')));
    expect(d('1a0001')).toThrow(CborError);
    expect(d('6568656c')).toThrow(/truncated/);
    expect(d('0101')).toThrow(/after the CBOR value/);
    expect(d('1c')).toThrow(/reserved/);
    expect(d('ff')).toThrow(/break/);
  });

  it('refuses values CBOR cannot carry here', () => {
    expect(() => encodeCbor({ f: () => 1 })).toThrow(CborError);
    expect(() => encodeCbor(Symbol('s'))).toThrow(/symbol/);
    expect(() => encodeCbor(new Date(0))).toThrow(/Date/);
    const deep: unknown[] = [];
    let cur = deep;
    for (let i = 0; i < 300; i++) cur.push((cur = []));
    expect(() => encodeCbor(deep)).toThrow(/deeper/);
  });

  it('grows its buffer and reuses it: a large value after small ones, then a small one again', () => {
    const enc = new CborEncoder(4);
    expect(hex(enc.encode('a'))).toBe('6161');
    const big = { list: new Array(5000).fill('Weather for Paris: 22°C') };
    expect(hex(enc.encode(big))).toBe(hex(host.encode(big)));
    expect(hex(enc.encode([1, 2]))).toBe('820102');
  });
});
