/**
 * CBOR for components, written for an interpreter: StarlingMonkey has no JIT, so every byte a
 * loop touches costs an interpreted step. The encoder writes into one preallocated, growing
 * Uint8Array through a DataView, strings go through TextEncoder.encodeInto straight into that
 * buffer, byte strings are copied with `set`; the decoder reads through a DataView and decodes
 * text with TextDecoder. No per-byte Array.push, no intermediate arrays.
 *
 * Output is byte-identical to the runner's cbor-x encoder (src/wasm/cbor.ts): minimal heads for
 * integers in [-2^32, 2^32), float64 for other numbers, 64-bit heads for bigints (bignum tags
 * past 64 bits), plain maps with
 * string keys in insertion order, untagged byte strings, definite lengths. Decoding accepts any
 * well-formed CBOR of those types (half/single floats, indefinite lengths, tags, bignums);
 * integers beyond 2^53 decode as bigint.
 */

/** A value the codec cannot encode or bytes that are not the CBOR it expects. */
export class CborError extends Error {
  override readonly name = 'CborError';
}

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder();
const TWO_32 = 0x100000000;
const MAX_DEPTH = 256;
const U64_MAX = (1n << 64n) - 1n;
/** Encoded map keys, shared by every encoder (a component's keys are a small, fixed set). */
const keyCache = new Map<string, Uint8Array>();
const KEY_CACHE_SIZE = 512;
/** Strings up to this many UTF-16 units try the ASCII paths first. */
const SHORT_TEXT = 64;

/** A reusable encoder: its buffer grows to the largest value encoded and is kept. */
export class CborEncoder {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSize = 512) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** The encoding of `value`, in a fresh Uint8Array of its exact length. */
  encode(value: unknown): Uint8Array {
    this.pos = 0;
    this.write(value, 0);
    return this.buf.slice(0, this.pos);
  }

  private ensure(extra: number): void {
    const need = this.pos + extra;
    if (need <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < need) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** A head for a non-negative integer argument `n` (at most 2^53 - 1). */
  private head(major: number, n: number): void {
    this.ensure(9);
    const b = this.buf;
    let p = this.pos;
    const m = major << 5;
    // Byte stores, not DataView calls: in an interpreter each native call costs more than a shift.
    if (n < 24) b[p++] = m | n;
    else if (n < 0x100) {
      b[p++] = m | 24;
      b[p++] = n;
    } else if (n < 0x10000) {
      b[p++] = m | 25;
      b[p++] = n >> 8;
      b[p++] = n & 0xff;
    } else if (n < TWO_32) {
      b[p++] = m | 26;
      b[p++] = n >>> 24;
      b[p++] = (n >>> 16) & 0xff;
      b[p++] = (n >>> 8) & 0xff;
      b[p++] = n & 0xff;
    } else {
      b[p++] = m | 27;
      this.view.setUint32(p, Math.floor(n / TWO_32));
      this.view.setUint32(p + 4, n >>> 0);
      p += 8;
    }
    this.pos = p;
  }

  private write(v: unknown, depth: number): void {
    switch (typeof v) {
      case 'string':
        return this.text(v);
      case 'number':
        return this.number(v);
      case 'boolean':
        this.ensure(1);
        this.buf[this.pos++] = v ? 0xf5 : 0xf4;
        return;
      case 'undefined':
        this.ensure(1);
        this.buf[this.pos++] = 0xf7;
        return;
      case 'bigint':
        return this.bigint(v);
      case 'object':
        if (v === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xf6;
          return;
        }
        if (depth >= MAX_DEPTH) throw new CborError(`value nested deeper than ${MAX_DEPTH} levels`);
        if (v instanceof Uint8Array) {
          this.head(2, v.length);
          this.ensure(v.length);
          this.buf.set(v, this.pos);
          this.pos += v.length;
          return;
        }
        if (Array.isArray(v)) {
          this.head(4, v.length);
          for (let i = 0; i < v.length; i++) this.write(v[i], depth + 1);
          return;
        }
        if (v instanceof Map) {
          this.head(5, v.size);
          for (const [k, x] of v) {
            this.write(k, depth + 1);
            this.write(x, depth + 1);
          }
          return;
        }
        if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer || v instanceof Date) {
          throw new CborError(`cannot encode ${v.constructor.name} (use Uint8Array, or a string for a date)`);
        }
        return this.object(v as Record<string, unknown>, depth);
      default:
        throw new CborError(`cannot encode a ${typeof v}`);
    }
  }

  private object(o: Record<string, unknown>, depth: number): void {
    const keys = Object.keys(o);
    this.head(5, keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      this.key(k);
      this.write(o[k], depth + 1);
    }
  }

  /**
   * A map key: the same few keys recur in every call, so their encodings are kept (two native
   * calls, a lookup and a copy, instead of one per character).
   */
  private key(k: string): void {
    let bytes = keyCache.get(k);
    if (bytes === undefined) {
      const start = this.pos;
      this.text(k);
      if (keyCache.size >= KEY_CACHE_SIZE || k.length > 32) return;
      bytes = this.buf.slice(start, this.pos);
      keyCache.set(k, bytes);
      return;
    }
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  private number(n: number): void {
    if (Number.isInteger(n) && n < TWO_32 && n >= -TWO_32) {
      if (n >= 0) this.head(0, n);
      else this.head(1, -1 - n);
      return;
    }
    this.ensure(9);
    this.buf[this.pos] = 0xfb;
    this.view.setFloat64(this.pos + 1, n);
    this.pos += 9;
  }

  private bigint(n: bigint): void {
    const negative = n < 0n;
    const arg = negative ? -1n - n : n;
    // As cbor-x: a 64-bit head up to 2^64 - 1 (2^64 - 2 for negatives), a bignum tag beyond.
    if (arg < U64_MAX || (!negative && arg === U64_MAX)) {
      this.ensure(9);
      this.buf[this.pos] = negative ? 0x3b : 0x1b;
      this.view.setBigUint64(this.pos + 1, arg);
      this.pos += 9;
      return;
    }
    const digits: number[] = [];
    for (let x = arg; x > 0n; x >>= 8n) digits.push(Number(x & 0xffn));
    this.ensure(1);
    this.buf[this.pos++] = negative ? 0xc3 : 0xc2;
    this.write(Uint8Array.from(digits.reverse()), 0);
  }

  private text(s: string): void {
    const len = s.length;
    if (len === 0) {
      this.head(3, 0);
      return;
    }
    this.ensure(9 + len * 3);
    // Short ASCII (keys, most values): one store per character beats a call into TextEncoder,
    // which allocates a view and a result object per string.
    if (len <= SHORT_TEXT) {
      const b = this.buf;
      const start = this.pos + (len < 24 ? 1 : 2);
      let i = 0;
      for (; i < len; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[start + i] = c;
      }
      if (i === len) {
        this.head(3, len);
        this.pos = start + len;
        return;
      }
    }
    // Up to 3 bytes per UTF-16 unit: reserve the head that bound needs, write the UTF-8 after
    // it, then move the bytes down if the real length takes a shorter head.
    const max = len * 3;
    const reserved = headSize(max);
    const start = this.pos + reserved;
    const written = utf8Encoder.encodeInto(s, this.buf.subarray(start)).written;
    const actual = headSize(written);
    if (actual !== reserved) this.buf.copyWithin(this.pos + actual, start, start + written);
    this.head(3, written);
    this.pos += written;
  }
}

function headSize(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < TWO_32 ? 5 : 9;
}

const shared = new CborEncoder();

/** Encodes with a module-wide encoder (components run one call at a time). */
export function encodeCbor(value: unknown): Uint8Array {
  return shared.encode(value);
}

const BREAK = Symbol('break');

class Reader {
  private pos = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  done(): void {
    if (this.pos !== this.bytes.length)
      throw new CborError(`${this.bytes.length - this.pos} bytes after the CBOR value`);
  }

  private need(n: number): number {
    const p = this.pos;
    if (p + n > this.bytes.length) throw new CborError(`truncated CBOR at byte ${p}`);
    this.pos = p + n;
    return p;
  }

  /** The argument of a head: a number up to 2^53 - 1, a bigint above, -1 for indefinite. */
  private arg(info: number): number | bigint {
    if (info < 24) return info;
    switch (info) {
      case 24:
        return this.bytes[this.need(1)]!;
      case 25: {
        const p = this.need(2);
        return (this.bytes[p]! << 8) | this.bytes[p + 1]!;
      }
      case 26: {
        const p = this.need(4);
        const b = this.bytes;
        return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;
      }
      case 27: {
        const p = this.need(8);
        const hi = this.view.getUint32(p);
        if (hi < 0x200000) return hi * TWO_32 + this.view.getUint32(p + 4);
        return this.view.getBigUint64(p);
      }
      case 31:
        return -1;
      default:
        throw new CborError(`reserved CBOR head ${info} at byte ${this.pos - 1}`);
    }
  }

  private length(info: number): number {
    const n = this.arg(info);
    if (typeof n === 'bigint') throw new CborError(`CBOR length ${n} is too large`);
    return n;
  }

  read(depth = 0): unknown {
    const v = this.item(depth);
    if (v === BREAK) throw new CborError(`unexpected CBOR break at byte ${this.pos - 1}`);
    return v;
  }

  private item(depth: number): unknown {
    if (depth > MAX_DEPTH) throw new CborError(`CBOR nested deeper than ${MAX_DEPTH} levels`);
    const ib = this.bytes[this.need(1)]!;
    const info = ib & 31;
    switch (ib >> 5) {
      case 0: {
        const n = this.arg(info);
        if (n === -1) throw new CborError('indefinite-length integer');
        return n;
      }
      case 1: {
        const n = this.arg(info);
        if (n === -1) throw new CborError('indefinite-length integer');
        if (typeof n === 'bigint') return -1n - n;
        return n < Number.MAX_SAFE_INTEGER ? -1 - n : -1n - BigInt(n);
      }
      case 2: {
        const n = this.length(info);
        if (n >= 0) return this.bytes.slice(this.need(n), this.pos);
        return concatChunks(this.chunks(2, depth));
      }
      case 3: {
        const n = this.length(info);
        if (n >= 0) return n === 0 ? '' : this.text(this.need(n), n);
        return utf8Decoder.decode(concatChunks(this.chunks(3, depth)));
      }
      case 4: {
        const n = this.length(info);
        if (n >= 0) {
          const a = new Array<unknown>(n);
          for (let i = 0; i < n; i++) a[i] = this.read(depth + 1);
          return a;
        }
        const a: unknown[] = [];
        for (let x = this.item(depth + 1); x !== BREAK; x = this.item(depth + 1)) a.push(x);
        return a;
      }
      case 5: {
        const n = this.length(info);
        const o: Record<string, unknown> = {};
        if (n >= 0) {
          for (let i = 0; i < n; i++) setKey(o, this.read(depth + 1), this.read(depth + 1));
        } else {
          for (let k = this.item(depth + 1); k !== BREAK; k = this.item(depth + 1))
            setKey(o, k, this.read(depth + 1));
        }
        return o;
      }
      case 6: {
        const tag = this.arg(info);
        const inner = this.read(depth + 1);
        if ((tag === 2 || tag === 3) && inner instanceof Uint8Array) {
          let n = 0n;
          for (let i = 0; i < inner.length; i++) n = (n << 8n) | BigInt(inner[i]!);
          return tag === 2 ? n : -1n - n;
        }
        return inner;
      }
      default:
        return this.simple(info);
    }
  }

  /** UTF-8 at `start`; short ASCII without a call into TextDecoder (see CborEncoder.text). */
  private text(start: number, n: number): string {
    const b = this.bytes;
    if (n <= SHORT_TEXT) {
      let out = '';
      let i = 0;
      for (; i < n; i++) {
        const c = b[start + i]!;
        if (c >= 0x80) break;
        out += String.fromCharCode(c);
      }
      if (i === n) return out;
    }
    return utf8Decoder.decode(b.subarray(start, start + n));
  }

  private simple(info: number): unknown {
    switch (info) {
      case 20:
        return false;
      case 21:
        return true;
      case 22:
        return null;
      case 23:
        return undefined;
      case 25:
        return halfToFloat(this.view.getUint16(this.need(2)));
      case 26:
        return this.view.getFloat32(this.need(4));
      case 27:
        return this.view.getFloat64(this.need(8));
      case 31:
        return BREAK;
      default:
        if (info < 20) return info;
        throw new CborError(`unsupported CBOR simple value ${info}`);
    }
  }

  /** The chunks of an indefinite-length byte or text string, up to its break. */
  private chunks(major: number, depth: number): Uint8Array[] {
    const parts: Uint8Array[] = [];
    for (;;) {
      const ib = this.bytes[this.need(1)]!;
      if (ib === 0xff) return parts;
      if (ib >> 5 !== major) throw new CborError('an indefinite-length string holds a chunk of another type');
      const n = this.length(ib & 31);
      if (n < 0) throw new CborError('nested indefinite-length string');
      parts.push(this.bytes.subarray(this.need(n), this.pos));
      if (depth > MAX_DEPTH) throw new CborError('CBOR nested too deep');
    }
  }
}

function setKey(o: Record<string, unknown>, k: unknown, v: unknown): void {
  const key = typeof k === 'string' ? k : String(k);
  // A `__proto__` key is data, never the object's prototype.
  if (key === '__proto__')
    Object.defineProperty(o, key, { value: v, enumerable: true, writable: true, configurable: true });
  else o[key] = v;
}

function concatChunks(parts: Uint8Array[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function halfToFloat(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  const s = h & 0x8000 ? -1 : 1;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** Decodes one CBOR value; maps become plain objects, byte strings Uint8Array copies. */
export function decodeCbor(bytes: Uint8Array): unknown {
  const r = new Reader(bytes);
  const v = r.read();
  r.done();
  return v;
}
