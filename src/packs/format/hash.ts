import { createHash } from 'node:crypto';
import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';

export function blake3Hex(bytes: Uint8Array): string {
  return bytesToHex(blake3(bytes));
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `sha256:<hex>`: the pack's content digest (OCI-compatible, the cache key). */
export function packDigest(bytes: Uint8Array): string {
  return `sha256:${sha256Hex(bytes)}`;
}

/** Checks `bytes` against a `sha256:` or `blake3:` pin; returns the computed value in the pin's algorithm. */
export function digestFor(pin: string, bytes: Uint8Array): string {
  const algo = pin.slice(0, pin.indexOf(':')).toLowerCase();
  if (algo === 'blake3') return `blake3:${blake3Hex(bytes)}`;
  return `sha256:${sha256Hex(bytes)}`;
}

export const DIGEST_PIN = /^(sha256:[0-9a-f]{64}|blake3:[0-9a-f]{64})$/;
