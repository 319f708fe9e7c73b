import { PackError } from '../../../common/errors.js';
import { SBOM_FORMAT } from '../constants.js';
import { blake3Hex } from '../hash.js';
import type { SbomEntry } from '../sbom.js';
import type { PackFile } from '../zip-writer.js';
import { WireCborError, canonicalWire, decodeWire, encodeWire, type WireValue } from './wire-cbor.js';

export const SBOM_CBOR = 'sbom.cbor';
export const PACK_LOCK_CBOR = 'pack.lock.cbor';

/** Files a pack-v1 SBOM never lists (upstream's reader skips them when checking coverage). */
export const V1_UNLISTED = new Set([SBOM_CBOR, 'sbom.json', 'signatures/pack.sig', 'signatures/chain.pem']);

/** packc's media types: CBOR and wasm by extension, YAML/JSON for dev flow files, the rest octet-stream. */
export function mediaTypeV1(path: string): string {
  if (path.endsWith('.cbor') && path !== PACK_LOCK_CBOR) return 'application/cbor';
  if (path.endsWith('.wasm')) return 'application/wasm';
  if (path.startsWith('flows/') && path.endsWith('.ygtc')) return 'application/yaml';
  if (path.startsWith('flows/') && path.endsWith('.json')) return 'application/json';
  return 'application/octet-stream';
}

/** `sbom.cbor`: canonical (length-first) CBOR `{files: [{path, size, media_type, hash_blake3}], format}`. */
export function buildSbomV1(files: readonly PackFile[]): Uint8Array {
  const entries = files
    .filter((f) => !V1_UNLISTED.has(f.path))
    .map(
      (f) =>
        new Map<string, WireValue>([
          ['path', f.path],
          ['size', f.bytes.byteLength],
          ['media_type', mediaTypeV1(f.path)],
          ['hash_blake3', blake3Hex(f.bytes)],
        ]),
    )
    .sort((a, b) =>
      Buffer.compare(Buffer.from(a.get('path') as string), Buffer.from(b.get('path') as string)),
    );
  return encodeWire(
    canonicalWire(
      new Map<string, WireValue>([
        ['files', entries],
        ['format', SBOM_FORMAT],
      ]),
    ),
  );
}

/** Reads `sbom.cbor` (any key order: upstream's reader is plain serde). */
export function parseSbomV1(bytes: Uint8Array, label: string): SbomEntry[] {
  const bad = (why: string): never => {
    throw new PackError('pack_sbom_invalid', `${label}: sbom.cbor ${why}`);
  };
  let root: WireValue;
  try {
    root = decodeWire(bytes);
  } catch (e) {
    if (e instanceof WireCborError) return bad(`is not valid CBOR: ${e.message}`);
    throw e;
  }
  if (!(root instanceof Map) || root.get('format') !== SBOM_FORMAT || !Array.isArray(root.get('files'))) {
    return bad(`must be {"format":"${SBOM_FORMAT}","files":[...]}`);
  }
  const seen = new Set<string>();
  return (root.get('files') as WireValue[]).map((e, i) => {
    if (!(e instanceof Map)) return bad(`files[${i}] is not a map`);
    const path = e.get('path');
    const size = e.get('size');
    const hash = e.get('hash_blake3');
    const media = e.get('media_type');
    if (
      typeof path !== 'string' ||
      typeof size !== 'number' ||
      !Number.isSafeInteger(size) ||
      size < 0 ||
      typeof hash !== 'string' ||
      !/^[0-9a-fA-F]{64}$/.test(hash)
    ) {
      return bad(`files[${i}] needs path, size and hash_blake3 (64 hex)`);
    }
    if (seen.has(path)) bad(`lists '${path}' twice`);
    seen.add(path);
    return {
      path,
      size,
      hash_blake3: hash.toLowerCase(),
      media_type: typeof media === 'string' ? media : '',
    };
  });
}

/** One SBOM entry whose file does not match it. */
export interface SbomMismatch {
  path: string;
  code: 'pack_sbom_size_mismatch' | 'pack_sbom_digest_mismatch';
  message: string;
}

/**
 * Checks every listed file is present, and every present file (but the SBOM and signature files) is listed
 * — both refused outright — and returns the entries whose size or BLAKE3 differ, for the caller's policy.
 */
export function sbomMismatchesV1(
  files: ReadonlyMap<string, Uint8Array>,
  entries: readonly SbomEntry[],
  label: string,
  sbomName: string,
): SbomMismatch[] {
  const listed = new Set<string>();
  const out: SbomMismatch[] = [];
  for (const e of entries) {
    const data = files.get(e.path);
    if (!data) {
      throw new PackError(
        'pack_sbom_file_missing',
        `${label}: '${e.path}' is listed in ${sbomName} but missing from the archive`,
        { entry: e.path },
      );
    }
    listed.add(e.path);
    if (data.byteLength !== e.size) {
      out.push({
        path: e.path,
        code: 'pack_sbom_size_mismatch',
        message: `${label}: '${e.path}' is ${data.byteLength} bytes, ${sbomName} says ${e.size}`,
      });
      continue;
    }
    const actual = blake3Hex(data);
    if (actual !== e.hash_blake3) {
      out.push({
        path: e.path,
        code: 'pack_sbom_digest_mismatch',
        message: `${label}: '${e.path}' has BLAKE3 ${actual}, ${sbomName} says ${e.hash_blake3}`,
      });
    }
  }
  for (const path of files.keys()) {
    if (!V1_UNLISTED.has(path) && !listed.has(path)) {
      throw new PackError(
        'pack_sbom_unlisted',
        `${label}: '${path}' is in the archive but not listed in ${sbomName}`,
        {
          entry: path,
        },
      );
    }
  }
  return out;
}
