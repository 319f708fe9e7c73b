import { PackError } from '../../common/errors.js';
import { SBOM_FORMAT, SELF_DESCRIBING, mediaTypeOf } from './constants.js';
import { blake3Hex } from './hash.js';
import { compareBytewise, type PackFile } from './zip-writer.js';

export interface SbomEntry {
  path: string;
  size: number;
  hash_blake3: string;
  media_type: string;
}

export interface SbomDocument {
  format: string;
  files: SbomEntry[];
}

/** The SBOM of the payload files (everything but the SBOM itself and the signatures), sorted. */
export function buildSbom(files: readonly PackFile[]): { entries: SbomEntry[]; bytes: Uint8Array } {
  const entries = files
    .filter((f) => !SELF_DESCRIBING.has(f.path))
    .map((f) => ({
      path: f.path,
      size: f.bytes.byteLength,
      hash_blake3: blake3Hex(f.bytes),
      media_type: mediaTypeOf(f.path),
    }))
    .sort((a, b) => compareBytewise(a.path, b.path));
  const doc: SbomDocument = { format: SBOM_FORMAT, files: entries };
  return { entries, bytes: new TextEncoder().encode(JSON.stringify(doc, null, 2)) };
}

export function parseSbom(bytes: Uint8Array, label: string): SbomEntry[] {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw new PackError(
      'pack_sbom_invalid',
      `${label}: sbom.json is not valid JSON: ${(e as Error).message}`,
    );
  }
  const d = doc as Partial<SbomDocument> | null;
  if (!d || typeof d !== 'object' || d.format !== SBOM_FORMAT || !Array.isArray(d.files)) {
    throw new PackError(
      'pack_sbom_invalid',
      `${label}: sbom.json must be {"format":"${SBOM_FORMAT}","files":[...]}`,
    );
  }
  const seen = new Set<string>();
  return d.files.map((e: unknown, i) => {
    const x = e as Partial<SbomEntry> | null;
    if (
      !x ||
      typeof x.path !== 'string' ||
      !Number.isSafeInteger(x.size) ||
      (x.size as number) < 0 ||
      typeof x.hash_blake3 !== 'string' ||
      !/^[0-9a-fA-F]{64}$/.test(x.hash_blake3) ||
      typeof x.media_type !== 'string'
    ) {
      throw new PackError(
        'pack_sbom_invalid',
        `${label}: sbom.json files[${i}] needs path, size, hash_blake3 (64 hex) and media_type`,
      );
    }
    if (seen.has(x.path))
      throw new PackError('pack_sbom_invalid', `${label}: sbom.json lists '${x.path}' twice`);
    if (SELF_DESCRIBING.has(x.path))
      throw new PackError('pack_sbom_invalid', `${label}: sbom.json must not list '${x.path}'`);
    seen.add(x.path);
    return {
      path: x.path,
      size: x.size as number,
      hash_blake3: x.hash_blake3.toLowerCase(),
      media_type: x.media_type,
    };
  });
}

/** Every listed file present with its size and BLAKE3; every present file listed. */
export function checkSbom(
  files: ReadonlyMap<string, Uint8Array>,
  entries: readonly SbomEntry[],
  label: string,
): void {
  const listed = new Set<string>();
  for (const e of entries) {
    const data = files.get(e.path);
    if (!data)
      throw new PackError(
        'pack_sbom_file_missing',
        `${label}: '${e.path}' is listed in sbom.json but missing from the archive`,
        { entry: e.path },
      );
    if (data.byteLength !== e.size) {
      throw new PackError(
        'pack_sbom_size_mismatch',
        `${label}: '${e.path}' is ${data.byteLength} bytes, sbom.json says ${e.size}`,
        { entry: e.path },
      );
    }
    const actual = blake3Hex(data);
    if (actual !== e.hash_blake3) {
      throw new PackError(
        'pack_sbom_digest_mismatch',
        `${label}: '${e.path}' has BLAKE3 ${actual}, sbom.json says ${e.hash_blake3}`,
        { entry: e.path },
      );
    }
    listed.add(e.path);
  }
  for (const path of files.keys()) {
    if (!SELF_DESCRIBING.has(path) && !listed.has(path)) {
      throw new PackError(
        'pack_sbom_unlisted',
        `${label}: '${path}' is in the archive but not listed in sbom.json`,
        { entry: path },
      );
    }
  }
}
