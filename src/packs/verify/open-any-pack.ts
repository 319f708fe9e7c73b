import { DEFAULT_ARCHIVE_LIMITS, MANIFEST_CBOR } from '../format/constants.js';
import { isPackV1Wire } from '../format/pack-v1/manifest-v1.js';
import { SBOM_CBOR } from '../format/pack-v1/sbom-v1.js';
import { decodeWire } from '../format/pack-v1/wire-cbor.js';
import { readArchive } from '../format/zip-reader.js';
import { verifyPackV1Files, type VerifiedPackV1 } from './pack-v1-verifier.js';
import { verifyLegacyFiles, type OpenPackOptions, type VerifiedPack } from './pack-verifier.js';

export type OpenedPack =
  { format: 'legacy'; pack: VerifiedPack } | { format: 'pack-v1'; pack: VerifiedPackV1 };

/** Which layout an opened archive has: pack-v1 carries `sbom.cbor` or a `schema_version` manifest. */
export function isPackV1Archive(files: ReadonlyMap<string, Uint8Array>): boolean {
  if (files.has(SBOM_CBOR)) return true;
  const m = files.get(MANIFEST_CBOR);
  if (!m) return false;
  try {
    return isPackV1Wire(decodeWire(m));
  } catch {
    // Not decodable here: the older layout's reader reports what is wrong with it.
    return false;
  }
}

/**
 * Opens and fully verifies a `.gtpack` of either layout: the archive's structure and caps first (one reader
 * for both), then the layout's own checks.
 */
export async function openAnyPack(bytes: Uint8Array, opts: OpenPackOptions): Promise<OpenedPack> {
  const files = await readArchive(bytes, opts.label, opts.limits ?? DEFAULT_ARCHIVE_LIMITS);
  if (isPackV1Archive(files)) {
    return {
      format: 'pack-v1',
      pack: verifyPackV1Files(files, {
        label: opts.label,
        policy: opts.policy,
        ...(opts.expectedId !== undefined ? { expectedId: opts.expectedId } : {}),
      }),
    };
  }
  return { format: 'legacy', pack: verifyLegacyFiles(files, opts) };
}

/** Id, version and warnings of an opened pack, whatever its layout. */
export function packSummary(p: OpenedPack): {
  id: string;
  version: string;
  signer?: string;
  warnings: string[];
} {
  if (p.format === 'pack-v1') {
    return {
      id: p.pack.manifest.pack_id,
      version: p.pack.manifest.version,
      ...(p.pack.signature.signer ? { signer: p.pack.signature.signer } : {}),
      warnings: p.pack.warnings,
    };
  }
  return {
    id: p.pack.manifest.meta.pack_id,
    version: p.pack.manifest.meta.version,
    ...(p.pack.signature.signer ? { signer: p.pack.signature.signer } : {}),
    warnings: p.pack.signature.warnings,
  };
}
