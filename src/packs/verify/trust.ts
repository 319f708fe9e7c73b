import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PackError } from '../../common/errors.js';
import { keyFingerprint, parsePublicKey } from '../format/keys.js';

export type PolicyMode = 'strict' | 'dev';

export interface TrustedKey {
  fingerprint: string;
  publicKey: Uint8Array;
  /** File or `inline`, for status and errors. */
  source: string;
}

export interface TrustPolicy {
  mode: PolicyMode;
  /** By fingerprint. */
  keys: ReadonlyMap<string, TrustedKey>;
}

function looksInline(spec: string): boolean {
  const t = spec.trim();
  return t.startsWith('-----BEGIN') || t.startsWith('{') || /^(?:ed25519:)?[A-Za-z0-9_-]{43}=?$/.test(t);
}

/** `GREENTIC_TRUSTED_KEYS`: comma-separated key files or inline keys. */
export function splitKeyList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Reads each key spec (a file path relative to `baseDir`, or an inline key). */
export function loadTrustedKeys(specs: readonly string[], baseDir: string, origin: string): TrustedKey[] {
  return specs.map((spec) => {
    if (looksInline(spec)) {
      const publicKey = parsePublicKey(spec, `${origin}: inline key`);
      return { fingerprint: keyFingerprint(publicKey), publicKey, source: 'inline' };
    }
    const file = path.resolve(baseDir, spec);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new PackError(
        'pack_trust_key_unreadable',
        `${origin}: trusted key file ${file}: ${(e as Error).message}`,
        { file },
      );
    }
    const publicKey = parsePublicKey(text, `${origin}: ${file}`);
    return { fingerprint: keyFingerprint(publicKey), publicKey, source: file };
  });
}

export function trustPolicy(mode: PolicyMode, keys: readonly TrustedKey[]): TrustPolicy {
  return { mode, keys: new Map(keys.map((k) => [k.fingerprint, k])) };
}
