import { createPrivateKey, createPublicKey } from 'node:crypto';
import * as ed from '@noble/ed25519';
import { sha512 } from '@noble/hashes/sha2.js';
import { PackError } from '../../common/errors.js';
import { blake3Hex } from './hash.js';

// @noble/ed25519 v3 leaves SHA-512 to the caller for its synchronous API.
ed.hashes.sha512 = sha512;

export interface Ed25519KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateKeyPair(): Ed25519KeyPair {
  const secretKey = ed.utils.randomSecretKey();
  return { secretKey, publicKey: ed.getPublicKey(secretKey) };
}

export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  return ed.getPublicKey(secretKey);
}

/** The key fingerprint of the format: BLAKE3 (hex) of the raw 32-byte public key. */
export function keyFingerprint(publicKey: Uint8Array): string {
  return blake3Hex(publicKey);
}

export function sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return ed.sign(message, secretKey);
}

export function verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return ed.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');

function fromB64u(s: string, what: string, label: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]+={0,2}$/.test(s))
    throw new PackError('pack_key_invalid', `${label}: ${what} is not URL-safe base64`);
  const b = new Uint8Array(Buffer.from(s, 'base64url'));
  if (b.length !== 32)
    throw new PackError('pack_key_invalid', `${label}: ${what} must be 32 bytes, got ${b.length}`);
  return b;
}

/** PKCS#8 / SPKI PEM through Node's crypto (JWK as the bridge to raw ed25519 bytes). */
export function secretKeyToPem(kp: Ed25519KeyPair): string {
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64u(kp.secretKey), x: b64u(kp.publicKey) },
    format: 'jwk',
  });
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

export function publicKeyToPem(publicKey: Uint8Array): string {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64u(publicKey) }, format: 'jwk' });
  return key.export({ type: 'spki', format: 'pem' }) as string;
}

export function keyToJwk(kp: { publicKey: Uint8Array; secretKey?: Uint8Array }): Record<string, string> {
  return {
    kty: 'OKP',
    crv: 'Ed25519',
    x: b64u(kp.publicKey),
    ...(kp.secretKey ? { d: b64u(kp.secretKey) } : {}),
    kid: keyFingerprint(kp.publicKey),
  };
}

interface Jwk {
  kty?: unknown;
  crv?: unknown;
  x?: unknown;
  d?: unknown;
}

function parseJwk(text: string, label: string): Jwk {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new PackError('pack_key_invalid', `${label}: not valid JSON: ${(e as Error).message}`);
  }
  const jwk = j as Jwk;
  if (!jwk || typeof jwk !== 'object' || jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') {
    throw new PackError(
      'pack_key_invalid',
      `${label}: expected an Ed25519 JWK ({"kty":"OKP","crv":"Ed25519",...})`,
    );
  }
  return jwk;
}

/**
 * A public key in any accepted form: SPKI PEM, JWK JSON, or inline `ed25519:<base64url>` /
 * bare 43-character base64url of the raw 32 bytes.
 */
export function parsePublicKey(text: string, label: string): Uint8Array {
  const t = text.trim();
  if (t.startsWith('-----BEGIN PUBLIC KEY-----')) {
    try {
      const jwk = createPublicKey(t).export({ format: 'jwk' }) as Jwk;
      if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
        throw new Error(`not an Ed25519 key (${String(jwk.crv ?? jwk.kty)})`);
      return fromB64u(jwk.x, 'public key', label);
    } catch (e) {
      if (e instanceof PackError) throw e;
      throw new PackError('pack_key_invalid', `${label}: unreadable public key PEM: ${(e as Error).message}`);
    }
  }
  if (t.startsWith('-----BEGIN')) {
    throw new PackError(
      'pack_key_invalid',
      `${label}: expected a PUBLIC KEY PEM (never trust a private key file)`,
    );
  }
  if (t.startsWith('{')) {
    const jwk = parseJwk(t, label);
    if (jwk.d !== undefined)
      throw new PackError('pack_key_invalid', `${label}: this JWK holds a private key; trust the public one`);
    if (typeof jwk.x !== 'string') throw new PackError('pack_key_invalid', `${label}: JWK has no 'x'`);
    return fromB64u(jwk.x, 'public key', label);
  }
  const inline = /^(?:ed25519:)?([A-Za-z0-9_-]{43}=?)$/.exec(t);
  if (inline) return fromB64u(inline[1]!, 'public key', label);
  throw new PackError(
    'pack_key_invalid',
    `${label}: not a public key (PEM, Ed25519 JWK, or ed25519:<base64url>)`,
  );
}

export function parseSecretKey(text: string, label: string): Ed25519KeyPair {
  const t = text.trim();
  let d: Uint8Array;
  if (t.startsWith('-----BEGIN PRIVATE KEY-----')) {
    try {
      const jwk = createPrivateKey(t).export({ format: 'jwk' }) as Jwk;
      if (jwk.crv !== 'Ed25519' || typeof jwk.d !== 'string')
        throw new Error(`not an Ed25519 key (${String(jwk.crv ?? jwk.kty)})`);
      d = fromB64u(jwk.d, 'private key', label);
    } catch (e) {
      if (e instanceof PackError) throw e;
      throw new PackError(
        'pack_key_invalid',
        `${label}: unreadable private key PEM: ${(e as Error).message}`,
      );
    }
  } else if (t.startsWith('{')) {
    const jwk = parseJwk(t, label);
    if (typeof jwk.d !== 'string')
      throw new PackError('pack_key_invalid', `${label}: JWK has no private part 'd'`);
    d = fromB64u(jwk.d, 'private key', label);
  } else {
    throw new PackError(
      'pack_key_invalid',
      `${label}: expected a PRIVATE KEY PEM or an Ed25519 JWK with 'd'`,
    );
  }
  return { secretKey: d, publicKey: ed.getPublicKey(d) };
}
