import { blake3 } from '@noble/hashes/blake3.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { PackError } from '../../common/errors.js';
import { keyFingerprint, sign, type Ed25519KeyPair } from './keys.js';
import type { SbomEntry } from './sbom.js';
import { compareBytewise } from './zip-writer.js';

/** `signatures/pack.sig`, field for field as the public format writes it. */
export interface SignatureEnvelope {
  alg: string;
  /** URL-safe base64, no padding. */
  sig: string;
  /** BLAKE3 hex of the signed digest input. */
  digest: string;
  signed_at_utc: string;
  key_fingerprint?: string;
}

/**
 * The signed digest: BLAKE3 over `manifest.cbor`, then `sbom.json`, then every SBOM entry as
 * `path + "\n" + blake3` in lexical order. Covering the SBOM bytes and the entry list means no
 * payload file can change without changing what was signed.
 */
export function signatureDigest(
  manifestCbor: Uint8Array,
  sbomBytes: Uint8Array,
  entries: readonly SbomEntry[],
): Uint8Array {
  const h = blake3.create();
  h.update(manifestCbor);
  h.update(sbomBytes);
  const enc = new TextEncoder();
  for (const e of [...entries].sort((a, b) => compareBytewise(a.path, b.path))) {
    h.update(enc.encode(e.path));
    h.update(enc.encode('\n'));
    h.update(enc.encode(e.hash_blake3));
  }
  return h.digest();
}

export function createEnvelope(digest: Uint8Array, key: Ed25519KeyPair, signedAt: string): SignatureEnvelope {
  return {
    alg: 'ed25519',
    sig: Buffer.from(sign(digest, key.secretKey)).toString('base64url'),
    digest: bytesToHex(digest),
    signed_at_utc: signedAt,
    key_fingerprint: keyFingerprint(key.publicKey),
  };
}

export function encodeEnvelope(env: SignatureEnvelope): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(env, null, 2));
}

export interface ParsedEnvelope extends SignatureEnvelope {
  signature: Uint8Array;
}

export function parseEnvelope(bytes: Uint8Array, label: string): ParsedEnvelope {
  const bad = (why: string): never => {
    throw new PackError('pack_signature_malformed', `${label}: signatures/pack.sig is malformed: ${why}`);
  };
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return bad(`not JSON (${(e as Error).message})`);
  }
  const e = raw as Partial<SignatureEnvelope> | null;
  if (!e || typeof e !== 'object' || Array.isArray(e)) return bad('not a JSON object');
  if (typeof e.alg !== 'string') return bad("'alg' missing");
  if (e.alg.toLowerCase() !== 'ed25519') {
    throw new PackError(
      'pack_signature_unsupported',
      `${label}: signature algorithm '${e.alg}' is not supported (ed25519 only)`,
    );
  }
  if (typeof e.sig !== 'string' || !/^[A-Za-z0-9_-]+$/.test(e.sig))
    return bad("'sig' must be URL-safe base64 without padding");
  const signature = new Uint8Array(Buffer.from(e.sig, 'base64url'));
  if (signature.length !== 64) return bad(`'sig' must decode to 64 bytes, got ${signature.length}`);
  if (typeof e.digest !== 'string' || !/^[0-9a-fA-F]{64}$/.test(e.digest))
    return bad("'digest' must be 64 hex characters");
  if (typeof e.signed_at_utc !== 'string') return bad("'signed_at_utc' missing");
  if (
    e.key_fingerprint !== undefined &&
    (typeof e.key_fingerprint !== 'string' || !/^[0-9a-fA-F]{64}$/.test(e.key_fingerprint))
  ) {
    return bad("'key_fingerprint' must be 64 hex characters");
  }
  return {
    alg: 'ed25519',
    sig: e.sig,
    digest: e.digest.toLowerCase(),
    signed_at_utc: e.signed_at_utc,
    ...(e.key_fingerprint ? { key_fingerprint: e.key_fingerprint.toLowerCase() } : {}),
    signature,
  };
}
