import { Encoder, type Options } from 'cbor-x';

/**
 * Canonical CBOR (RFC 8949 §4.2.1 core deterministic encoding) on top of cbor-x. cbor-x has no
 * sorted-keys mode, so maps are built here with their keys in canonical order (encoded bytes:
 * shorter first, then bytewise), from a plain-map encoder (no records, no tags, minimal
 * headers). Floats are refused: the manifest has none and their shortest form is not worth it.
 */
const codec = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  copyBuffers: true,
  structuredClone: false,
  int64AsNumber: true,
  // Maps are how key order is kept; tag 259 ("this was a Map") is not canonical CBOR.
  useTag259ForMaps: false,
} as Options);

export class CanonicalCborError extends Error {}

function compareKeys(a: string, b: string): number {
  const ab = Buffer.from(a, 'utf8');
  const bb = Buffer.from(b, 'utf8');
  return ab.length - bb.length || Buffer.compare(ab, bb);
}

function canonicalize(v: unknown, at: string): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v))
      throw new CanonicalCborError(`${at}: only safe integers are allowed, got ${v}`);
    return v;
  }
  if (v instanceof Uint8Array) return v;
  if (Array.isArray(v)) return v.map((x, i) => canonicalize(x, `${at}[${i}]`));
  if (v instanceof Map) {
    const out = new Map<string, unknown>();
    const keys = [...v.keys()].map((k) => {
      if (typeof k !== 'string') throw new CanonicalCborError(`${at}: map keys must be strings`);
      return k;
    });
    for (const k of keys.sort(compareKeys)) {
      const x = v.get(k);
      if (x !== undefined) out.set(k, canonicalize(x, `${at}.${k}`));
    }
    return out;
  }
  if (typeof v === 'object') {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null)
      throw new CanonicalCborError(`${at}: unsupported value of type ${v.constructor.name}`);
    const out = new Map<string, unknown>();
    const rec = v as Record<string, unknown>;
    for (const k of Object.keys(rec).sort(compareKeys)) {
      const x = rec[k];
      if (x !== undefined) out.set(k, canonicalize(x, `${at}.${k}`));
    }
    return out;
  }
  throw new CanonicalCborError(`${at}: unsupported value of type ${typeof v}`);
}

export function encodeCanonical(value: unknown): Uint8Array {
  return new Uint8Array(codec.encode(canonicalize(value, '$')));
}

/**
 * Decodes and insists the bytes are exactly the canonical encoding of what they hold, so two
 * readers can never see different manifests in the same signed bytes.
 */
export function decodeCanonical(bytes: Uint8Array): unknown {
  let value: unknown;
  try {
    value = codec.decode(bytes);
  } catch (e) {
    throw new CanonicalCborError(`not valid CBOR: ${(e as Error).message}`);
  }
  let again: Uint8Array;
  try {
    again = encodeCanonical(value);
  } catch (e) {
    throw new CanonicalCborError(`not canonical CBOR: ${(e as Error).message}`);
  }
  if (Buffer.compare(Buffer.from(again), Buffer.from(bytes)) !== 0) {
    throw new CanonicalCborError(
      'not canonical CBOR (keys out of order, non-minimal lengths, tags or trailing bytes)',
    );
  }
  return value;
}
