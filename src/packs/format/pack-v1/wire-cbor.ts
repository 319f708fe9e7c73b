/**
 * A small CBOR codec for upstream's wire forms. Upstream writes `manifest.cbor` with ciborium in Rust
 * struct declaration order (not canonical), and the older layout with serde_cbor's self-describe tag 55799;
 * reading them needs maps whose key order survives decoding, and writing them byte-identically needs an
 * encoder that keeps the order it is given. cbor-x can do neither without options whose behaviour on floats
 * and tags would then have to be pinned down anyway, so the ~150 lines live here.
 *
 * Values: `null | boolean | number | bigint | string | Uint8Array | WireValue[] | WireMap`; maps keep their
 * insertion order and only have text keys (every upstream map does).
 */

export type WireValue = null | boolean | number | bigint | string | Uint8Array | WireValue[] | WireMap;
export type WireMap = Map<string, WireValue>;

export class WireCborError extends Error {}

const SELF_DESCRIBE_TAG = 55799;
const MAX_DEPTH = 64;

// ---------------------------------------------------------------------------------------------- encoding

class Writer {
  private buf = new Uint8Array(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }

  /** Major type + argument in its shortest form. */
  head(major: number, arg: number | bigint): void {
    const m = major << 5;
    const n = typeof arg === 'bigint' ? arg : BigInt(arg);
    if (n < 24n) this.byte(m | Number(n));
    else if (n < 0x100n) {
      this.byte(m | 24);
      this.byte(Number(n));
    } else if (n < 0x10000n) {
      this.byte(m | 25);
      this.byte(Number(n >> 8n));
      this.byte(Number(n & 0xffn));
    } else if (n < 0x100000000n) {
      this.byte(m | 26);
      for (let s = 24n; s >= 0n; s -= 8n) this.byte(Number((n >> s) & 0xffn));
    } else if (n < 0x10000000000000000n) {
      this.byte(m | 27);
      for (let s = 56n; s >= 0n; s -= 8n) this.byte(Number((n >> s) & 0xffn));
    } else throw new WireCborError(`integer ${n} does not fit 64 bits`);
  }

  result(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** The IEEE half-precision bits of `v` when it is exactly representable there, else undefined. */
function toHalf(v: number): number | undefined {
  if (Number.isNaN(v)) return 0x7e00;
  if (v === Infinity) return 0x7c00;
  if (v === -Infinity) return 0xfc00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a === 0) return sign;
  const exp = Math.floor(Math.log2(a));
  if (exp >= -14 && exp <= 15) {
    const mant = a / 2 ** exp - 1;
    const m = mant * 1024;
    if (Number.isInteger(m) && 2 ** exp * (1 + m / 1024) === a) return sign | ((exp + 15) << 10) | m;
    return undefined;
  }
  if (exp < -14 && exp >= -24) {
    const m = a / 2 ** -24;
    if (Number.isInteger(m) && m < 1024) return sign | m;
  }
  return undefined;
}

/** ciborium writes a float in the shortest width that holds it losslessly (f16, f32, f64). */
function writeFloat(w: Writer, v: number): void {
  const half = toHalf(v);
  if (half !== undefined) {
    w.byte(0xf9);
    w.byte(half >> 8);
    w.byte(half & 0xff);
    return;
  }
  const dv = new DataView(new ArrayBuffer(8));
  if (Math.fround(v) === v) {
    dv.setFloat32(0, v);
    w.byte(0xfa);
    w.bytes(new Uint8Array(dv.buffer, 0, 4));
    return;
  }
  dv.setFloat64(0, v);
  w.byte(0xfb);
  w.bytes(new Uint8Array(dv.buffer));
}

const utf8enc = new TextEncoder();

function writeValue(w: Writer, v: WireValue, depth: number): void {
  if (depth > MAX_DEPTH) throw new WireCborError('value nested too deeply');
  if (v === null) w.byte(0xf6);
  else if (v === true) w.byte(0xf5);
  else if (v === false) w.byte(0xf4);
  else if (typeof v === 'bigint') {
    if (v >= 0n) w.head(0, v);
    else w.head(1, -1n - v);
  } else if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
      if (v >= 0) w.head(0, v);
      else w.head(1, -1 - v);
    } else writeFloat(w, v);
  } else if (typeof v === 'string') {
    const b = utf8enc.encode(v);
    w.head(3, b.length);
    w.bytes(b);
  } else if (v instanceof Uint8Array) {
    w.head(2, v.length);
    w.bytes(v);
  } else if (Array.isArray(v)) {
    w.head(4, v.length);
    for (const x of v) writeValue(w, x, depth + 1);
  } else if (v instanceof Map) {
    w.head(5, v.size);
    for (const [k, x] of v) {
      writeValue(w, k, depth + 1);
      writeValue(w, x, depth + 1);
    }
  } else throw new WireCborError(`cannot encode a value of type ${typeof v}`);
}

/** Encodes definite-length, shortest-integer CBOR with maps in their insertion order; no tags. */
export function encodeWire(v: WireValue, opts: { selfDescribe?: boolean } = {}): Uint8Array {
  const w = new Writer();
  if (opts.selfDescribe) w.head(6, SELF_DESCRIBE_TAG);
  writeValue(w, v, 0);
  return w.result();
}

// ---------------------------------------------------------------------------------------------- decoding

const utf8dec = new TextDecoder('utf-8', { fatal: true });

class Reader {
  pos = 0;
  constructor(private readonly b: Uint8Array) {}

  fail(why: string): never {
    throw new WireCborError(`${why} at byte ${this.pos}`);
  }

  u8(): number {
    if (this.pos >= this.b.length) this.fail('unexpected end of data');
    return this.b[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (n > this.b.length - this.pos) this.fail('unexpected end of data');
    const out = this.b.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  arg(info: number): number | bigint {
    if (info < 24) return info;
    if (info === 24) return this.u8();
    if (info === 25) return (this.u8() << 8) | this.u8();
    if (info === 26) return ((this.u8() << 24) >>> 0) + (this.u8() << 16) + (this.u8() << 8) + this.u8();
    if (info === 27) {
      let n = 0n;
      for (let i = 0; i < 8; i++) n = (n << 8n) | BigInt(this.u8());
      return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
    }
    return this.fail(info === 31 ? 'indefinite-length items are not accepted' : 'reserved length encoding');
  }

  length(info: number): number {
    const n = this.arg(info);
    if (typeof n === 'bigint' || n > this.b.length) this.fail('length runs past the data');
    return n;
  }

  value(depth: number, topLevel: boolean): WireValue {
    if (depth > MAX_DEPTH) this.fail('value nested too deeply');
    const ib = this.u8();
    const major = ib >> 5;
    const info = ib & 0x1f;
    switch (major) {
      case 0:
        return this.arg(info);
      case 1: {
        const n = this.arg(info);
        return typeof n === 'bigint' ? -1n - n : -1 - n;
      }
      case 2:
        return this.take(this.length(info)).slice();
      case 3: {
        const bytes = this.take(this.length(info));
        try {
          return utf8dec.decode(bytes);
        } catch {
          return this.fail('text string is not valid UTF-8');
        }
      }
      case 4: {
        const n = this.length(info);
        const out: WireValue[] = [];
        for (let i = 0; i < n; i++) out.push(this.value(depth + 1, false));
        return out;
      }
      case 5: {
        const n = this.length(info);
        const out: WireMap = new Map();
        for (let i = 0; i < n; i++) {
          const k = this.value(depth + 1, false);
          if (typeof k !== 'string') this.fail('map key is not a text string');
          if (out.has(k)) this.fail(`map key '${k}' appears twice`);
          out.set(k, this.value(depth + 1, false));
        }
        return out;
      }
      case 6: {
        const tag = this.arg(info);
        // serde_cbor's self_describe() prefix; it says "this is CBOR" and nothing about the value.
        if (tag === SELF_DESCRIBE_TAG && topLevel) return this.value(depth + 1, false);
        return this.fail(`CBOR tag ${tag} is not accepted`);
      }
      default:
        return this.simple(info);
    }
  }

  simple(info: number): WireValue {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    const dv = (n: number): DataView => {
      const b = this.take(n);
      return new DataView(b.buffer, b.byteOffset, n);
    };
    if (info === 25) return halfToNumber(dv(2).getUint16(0));
    if (info === 26) return dv(4).getFloat32(0);
    if (info === 27) return dv(8).getFloat64(0);
    return this.fail(`simple value ${info} is not accepted`);
  }
}

function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/**
 * Decodes one CBOR item and refuses trailing bytes, duplicate or non-text map keys, indefinite lengths and
 * any tag but a leading self-describe tag. Key order is kept (maps come back as `Map`).
 */
export function decodeWire(bytes: Uint8Array): WireValue {
  const r = new Reader(bytes);
  const v = r.value(0, true);
  if (r.pos !== bytes.length) r.fail('trailing bytes after the CBOR item');
  return v;
}

/** True when the bytes start with the self-describe tag 55799 (`d9 d9 f7`). */
export function hasSelfDescribeTag(bytes: Uint8Array): boolean {
  return bytes.length >= 3 && bytes[0] === 0xd9 && bytes[1] === 0xd9 && bytes[2] === 0xf7;
}

// ---------------------------------------------------------------------------------------------- JSON bridge

export type JsonLike = null | boolean | number | string | JsonLike[] | { [key: string]: JsonLike };

function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * A `serde_json::Value` on the wire: maps with keys sorted bytewise (serde_json's Map is a BTreeMap).
 * `ordered: true` keeps the object's own key order instead (plain Rust structs, written field by field).
 */
export function jsonToWire(v: unknown, ordered = false): WireValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean' || typeof v === 'string' || typeof v === 'bigint') return v;
  if (typeof v === 'number') return v;
  if (Array.isArray(v)) return v.map((x) => jsonToWire(x, ordered));
  if (typeof v === 'object') {
    const keys = Object.keys(v as Record<string, unknown>).filter(
      (k) => (v as Record<string, unknown>)[k] !== undefined,
    );
    if (!ordered) keys.sort(compareBytewise);
    return new Map(keys.map((k) => [k, jsonToWire((v as Record<string, unknown>)[k], ordered)]));
  }
  throw new WireCborError(`cannot encode a value of type ${typeof v}`);
}

/** Wire value → plain JSON (maps to objects in wire order; byte strings and big integers refused). */
export function wireToJson(v: WireValue, at = '$'): JsonLike {
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') throw new WireCborError(`${at}: integer ${v} is out of range`);
  if (v instanceof Uint8Array) throw new WireCborError(`${at}: byte strings are not JSON`);
  if (Array.isArray(v)) return v.map((x, i) => wireToJson(x, `${at}[${i}]`));
  const out: { [key: string]: JsonLike } = {};
  for (const [k, x] of v) {
    // `__proto__` as an own key would be dropped by a plain assignment; defineProperty keeps it inert.
    Object.defineProperty(out, k, {
      value: wireToJson(x, `${at}.${k}`),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

/** Length-first canonical key order (RFC 7049 §3.9), upstream's `to_canonical_cbor`. */
export function canonicalWire(v: WireValue): WireValue {
  if (Array.isArray(v)) return v.map(canonicalWire);
  if (v instanceof Map) {
    const keys = [...v.keys()].sort((a, b) => {
      const ab = Buffer.from(a, 'utf8');
      const bb = Buffer.from(b, 'utf8');
      return ab.length - bb.length || Buffer.compare(ab, bb);
    });
    return new Map(keys.map((k) => [k, canonicalWire(v.get(k)!)]));
  }
  return v;
}
