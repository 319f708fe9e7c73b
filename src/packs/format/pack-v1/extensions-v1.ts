import { PackError } from '../../../common/errors.js';
import type { JsonValue } from '../../../flows/flow-v1.js';
import type { PackV1Manifest } from './manifest-v1.js';

export const EXT_PACK_MODE = 'greentic.pack-mode.v1';
export const EXT_COMPONENT_SOURCES = 'greentic.pack.component_sources@v1';
export const EXT_COMPONENT_MANIFESTS = 'greentic.pack.component_manifests@v1';
/**
 * This runner's extension: sha256 of every payload file (all but manifest.cbor, the SBOM and signature
 * files). pack-v1 signatures cover only the manifest, and upstream's SBOM is not signed, so without this a
 * flow source or asset could be swapped and the SBOM rewritten under a valid signature. Upstream readers
 * ignore unknown extensions.
 */
export const EXT_PAYLOAD_DIGESTS = 'greentic.runner.payload_digests@v1';

/** One `greentic.pack.component_sources@v1` entry: where a component came from and the sha256 of its wasm. */
export interface ComponentSourceV1 {
  name: string;
  component_id?: string;
  source: string;
  /** `sha256:<hex>` of the wasm bytes. */
  digest: string;
  /** Archive path of the bundled wasm; absent for a `remote` artifact. */
  wasm_path?: string;
  manifest_path?: string;
}

export interface ComponentManifestIndexV1 {
  component_id: string;
  manifest_file: string;
  encoding: string;
  content_hash?: string;
}

function rec(v: JsonValue | undefined): Record<string, JsonValue> | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : undefined;
}

function bad(label: string, key: string, why: string): never {
  throw new PackError('pack_manifest_invalid', `${label}: manifest.cbor extensions.${key}: ${why}`);
}

const SHA256_PIN = /^sha256:[0-9a-fA-F]{64}$/;

export function componentSourcesV1(m: PackV1Manifest, label: string): ComponentSourceV1[] {
  const ext = m.extensions?.[EXT_COMPONENT_SOURCES];
  if (!ext) return [];
  const inline = rec(ext.inline);
  if (!inline) return bad(label, EXT_COMPONENT_SOURCES, 'inline payload missing');
  if (inline['schema_version'] !== 1) bad(label, EXT_COMPONENT_SOURCES, 'schema_version must be 1');
  const list = inline['components'];
  if (!Array.isArray(list)) return bad(label, EXT_COMPONENT_SOURCES, "'components' must be a list");
  return list.map((x, i) => {
    const e = rec(x);
    const name = e?.['name'];
    const source = e?.['source'];
    const digest = rec(e?.['resolved'])?.['digest'];
    if (!e || typeof name !== 'string' || typeof source !== 'string' || typeof digest !== 'string') {
      return bad(label, EXT_COMPONENT_SOURCES, `components[${i}] needs name, source and resolved.digest`);
    }
    if (!SHA256_PIN.test(digest))
      bad(label, EXT_COMPONENT_SOURCES, `components[${i}].resolved.digest must be sha256:<64 hex>`);
    const artifact = e['artifact'];
    const inl = rec(rec(artifact)?.['inline']);
    if (artifact !== 'remote' && !inl)
      bad(label, EXT_COMPONENT_SOURCES, `components[${i}].artifact must be {inline} or "remote"`);
    const wasm = inl?.['wasm_path'];
    if (inl && typeof wasm !== 'string')
      bad(label, EXT_COMPONENT_SOURCES, `components[${i}].artifact.inline.wasm_path missing`);
    const cid = e['component_id'];
    const mpath = inl?.['manifest_path'];
    return {
      name,
      ...(typeof cid === 'string' ? { component_id: cid } : {}),
      source,
      digest: digest.toLowerCase(),
      ...(typeof wasm === 'string' ? { wasm_path: wasm } : {}),
      ...(typeof mpath === 'string' ? { manifest_path: mpath } : {}),
    };
  });
}

export function componentManifestsV1(m: PackV1Manifest, label: string): ComponentManifestIndexV1[] {
  const ext = m.extensions?.[EXT_COMPONENT_MANIFESTS];
  if (!ext) return [];
  const inline = rec(ext.inline);
  const list = inline?.['entries'];
  if (!Array.isArray(list)) return bad(label, EXT_COMPONENT_MANIFESTS, "'entries' must be a list");
  return list.map((x, i) => {
    const e = rec(x);
    const id = e?.['component_id'];
    const file = e?.['manifest_file'];
    if (!e || typeof id !== 'string' || typeof file !== 'string') {
      return bad(label, EXT_COMPONENT_MANIFESTS, `entries[${i}] needs component_id and manifest_file`);
    }
    const hash = e['content_hash'];
    if (hash !== undefined && hash !== null && (typeof hash !== 'string' || !SHA256_PIN.test(hash))) {
      bad(label, EXT_COMPONENT_MANIFESTS, `entries[${i}].content_hash must be sha256:<64 hex>`);
    }
    return {
      component_id: id,
      manifest_file: file,
      encoding: typeof e['encoding'] === 'string' ? e['encoding'] : 'cbor',
      ...(typeof hash === 'string' ? { content_hash: hash.toLowerCase() } : {}),
    };
  });
}

/** `greentic.pack-mode.v1` → `prod` | `dev` (absent: undefined). */
export function packModeV1(m: PackV1Manifest): string | undefined {
  const mode = rec(m.extensions?.[EXT_PACK_MODE]?.inline)?.['mode'];
  return typeof mode === 'string' ? mode : undefined;
}

/** `greentic.runner.payload_digests@v1` → path → `sha256:<hex>`; undefined when the pack has none. */
export function payloadDigestsV1(m: PackV1Manifest, label: string): Map<string, string> | undefined {
  const ext = m.extensions?.[EXT_PAYLOAD_DIGESTS];
  if (!ext) return undefined;
  const files = rec(rec(ext.inline)?.['files']);
  if (!files) return bad(label, EXT_PAYLOAD_DIGESTS, "'files' must be a map of path to sha256");
  const out = new Map<string, string>();
  for (const [p, d] of Object.entries(files)) {
    if (typeof d !== 'string' || !SHA256_PIN.test(d))
      bad(label, EXT_PAYLOAD_DIGESTS, `'${p}' must map to sha256:<64 hex>`);
    out.set(p, (d as string).toLowerCase());
  }
  return out;
}
