/** Fixed names and limits of the `.gtpack` format (greentic-pack `docs/pack-format.md`). */
export const PACK_FORMAT_VERSION = 1;
export const SBOM_FORMAT = 'greentic-sbom-v1';

export const MANIFEST_CBOR = 'manifest.cbor';
export const MANIFEST_JSON = 'manifest.json';
export const SBOM_JSON = 'sbom.json';
export const SIGNATURE_PATH = 'signatures/pack.sig';
export const CHAIN_PATH = 'signatures/chain.pem';

/** Files that describe the pack rather than belong to it: never listed in the SBOM. */
export const SELF_DESCRIBING = new Set([SBOM_JSON, SIGNATURE_PATH, CHAIN_PATH]);

/** OCI artifact media types of a pushed pack. */
export const PACK_LAYER_MEDIA_TYPE = 'application/vnd.greentic.pack.v1+zip';
export const PACK_ARTIFACT_TYPE = 'application/vnd.greentic.pack.v1';

/** Reader caps. A pack over any of them is refused before a byte of it is inflated. */
export interface ArchiveLimits {
  /** Size of the `.gtpack` file itself. */
  maxArchiveBytes: number;
  maxEntries: number;
  /** Uncompressed size of one entry. */
  maxFileBytes: number;
  /** Uncompressed size of all entries together (zip bombs). */
  maxTotalBytes: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = {
  maxArchiveBytes: 128 * 1024 * 1024,
  maxEntries: 4096,
  maxFileBytes: 32 * 1024 * 1024,
  maxTotalBytes: 128 * 1024 * 1024,
};

export function mediaTypeOf(path: string): string {
  if (path === MANIFEST_CBOR) return 'application/cbor';
  if (path.endsWith('.wasm')) return 'application/wasm';
  if (path.endsWith('.ygtc') || path.endsWith('.yaml') || path.endsWith('.yml')) return 'application/yaml';
  if (path.endsWith('.schema.json')) return 'application/schema+json';
  if (path.endsWith('.json')) return 'application/json';
  if (path.endsWith('.pem')) return 'application/x-pem-file';
  if (path.endsWith('.md')) return 'text/markdown';
  if (path.endsWith('.txt')) return 'text/plain';
  return 'application/octet-stream';
}
