/**
 * The host's CBOR codec for 0.6 payloads: plain maps with string keys (no cbor-x records),
 * untagged byte strings, minimal map headers, 64-bit integers decoded as numbers.
 */
import { Encoder, type Options } from 'cbor-x';

const codec = new Encoder({
  useRecords: false,
  mapsAsObjects: true,
  tagUint8Array: false,
  variableMapSize: true,
  copyBuffers: true,
  // Not in cbor-x's typings: u64/i64 values decode as numbers rather than BigInt (JSON-safe).
  int64AsNumber: true,
} as Options);

export function encodeCbor(value: unknown): Uint8Array {
  return codec.encode(value);
}

export function decodeCbor(bytes: Uint8Array): unknown {
  return codec.decode(bytes);
}
