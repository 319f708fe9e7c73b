import { PackError } from '../../../common/errors.js';
import { MANIFEST_CBOR, type ArchiveLimits } from '../constants.js';
import { sha256Hex } from '../hash.js';
import { keyFingerprint, sign, type Ed25519KeyPair } from '../keys.js';
import type { PackManifest } from '../manifest.js';
import { buildPackFromDir, type BuildOptions } from '../pack-builder.js';
import { readArchive } from '../zip-reader.js';
import { writeDeterministicZip, type PackFile } from '../zip-writer.js';
import { compileYgtcToFlowV1 } from './compile-ygtc.js';
import { EXT_COMPONENT_SOURCES, EXT_PACK_MODE, EXT_PAYLOAD_DIGESTS } from './extensions-v1.js';
import type { FlowV1Entry, JsonValue } from '../../../flows/flow-v1.js';
import {
  PACK_V1_SCHEMA,
  decodeManifestV1,
  encodeManifestV1,
  type PackV1Component,
  type PackV1Kind,
  type PackV1Manifest,
} from './manifest-v1.js';
import { PACK_LOCK_CBOR, SBOM_CBOR, buildSbomV1, parseSbomV1, sbomMismatchesV1 } from './sbom-v1.js';
import { canonicalWire, encodeWire, jsonToWire, type WireValue } from './wire-cbor.js';

export interface PackV1Archive {
  bytes: Buffer;
  manifest: PackV1Manifest;
  manifestBytes: Uint8Array;
  files: PackFile[];
}

/**
 * Signs a manifest the pack-v1 way: ed25519 over the manifest encoded with an empty signature list, stored
 * as `{key_id, algorithm: "ed25519", signature: <standard base64>}`. `key_id` defaults to the key's
 * fingerprint, which is how this runner's trust policy names keys.
 */
export function signManifestV1(m: PackV1Manifest, key: Ed25519KeyPair, keyId?: string): PackV1Manifest {
  const sig = sign(encodeManifestV1(m, { emptySignatures: true }), key.secretKey);
  return {
    ...m,
    signatures: [
      {
        key_id: keyId ?? keyFingerprint(key.publicKey),
        algorithm: 'ed25519',
        signature: Buffer.from(sig).toString('base64'),
      },
    ],
  };
}

/**
 * Manifest (signed when a key is given) → `sbom.cbor` over every other file → deterministic ZIP (stored,
 * 1980-01-01, mode 0644, entries in lexical order). Payload files are the components, assets, flow sources
 * and `pack.lock.cbor`.
 */
export async function assemblePackV1(input: {
  manifest: PackV1Manifest;
  files: readonly PackFile[];
  key?: Ed25519KeyPair;
  keyId?: string;
}): Promise<PackV1Archive> {
  const manifest = input.key ? signManifestV1(input.manifest, input.key, input.keyId) : input.manifest;
  const manifestBytes = encodeManifestV1(manifest);
  const payload: PackFile[] = [{ path: MANIFEST_CBOR, bytes: manifestBytes }, ...input.files];
  const files: PackFile[] = [...payload, { path: SBOM_CBOR, bytes: buildSbomV1(payload) }];
  return { bytes: await writeDeterministicZip(files), manifest, manifestBytes, files };
}

function sha256Pin(bytes: Uint8Array): string {
  return `sha256:${sha256Hex(bytes)}`;
}

/**
 * `pack.lock.cbor` (canonical, length-first). `describe_hash` is upstream's fallback for a component whose
 * describe could not be hashed (the wasm digest's hex); `schema_hash` hashes the operation's JSON Schemas
 * as this runner knows them, not upstream's SchemaIr, so it is stable here but not comparable to upstream's.
 */
export function buildPackLock(
  components: readonly {
    id: string;
    version: string;
    world: string;
    ref: string;
    digest: string;
    operations: readonly string[];
  }[],
): Uint8Array {
  const lock = new Map<string, WireValue>();
  for (const c of [...components].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    const ops = [...c.operations].sort().map(
      (op) =>
        new Map<string, WireValue>([
          ['operation_id', op],
          [
            'schema_hash',
            sha256Hex(
              encodeWire(
                canonicalWire(jsonToWire({ config: null, input: null, output: null, operation: op })),
              ),
            ),
          ],
        ]),
    );
    lock.set(
      c.id,
      new Map<string, WireValue>([
        ['component_id', c.id],
        ['ref', c.ref],
        ['abi_version', c.world.endsWith('@0.1.0') ? '0.1.0' : '0.6.0'],
        ['resolved_digest', c.digest],
        ['describe_hash', c.digest.slice('sha256:'.length)],
        ['operations', ops],
        ['world', c.world],
        ['component_version', c.version],
      ]),
    );
  }
  return encodeWire(
    canonicalWire(
      new Map<string, WireValue>([
        ['version', 1],
        ['components', lock],
      ]),
    ),
  );
}

/**
 * The pack-v1 manifest both builders write (today's layout and upstream's `pack.yaml`): the
 * payload files' sha256 pinned in the signed manifest, so none can be swapped with the SBOM
 * rewritten, and the component sources extension when components are bundled.
 */
export function composeManifestV1(input: {
  packId: string;
  name?: string;
  version: string;
  kind: PackV1Kind;
  publisher: string;
  components: PackV1Component[];
  flows: FlowV1Entry[];
  files: readonly PackFile[];
  sources: JsonValue[];
}): PackV1Manifest {
  const digests: Record<string, JsonValue> = {};
  for (const f of input.files) digests[f.path] = sha256Pin(f.bytes);
  return {
    schema_version: PACK_V1_SCHEMA,
    pack_id: input.packId,
    ...(input.name !== undefined ? { name: input.name } : {}),
    version: input.version,
    kind: input.kind,
    publisher: input.publisher,
    components: input.components,
    flows: input.flows,
    dependencies: [],
    capabilities: [],
    secret_requirements: [],
    signatures: [],
    extensions: {
      [EXT_PACK_MODE]: { kind: EXT_PACK_MODE, version: '1', inline: { mode: 'prod' } },
      [EXT_PAYLOAD_DIGESTS]: {
        kind: EXT_PAYLOAD_DIGESTS,
        version: 'v1',
        inline: { files: digests, schema_version: 1 },
      },
      ...(input.sources.length > 0
        ? {
            [EXT_COMPONENT_SOURCES]: {
              kind: EXT_COMPONENT_SOURCES,
              version: 'v1',
              inline: { components: input.sources, schema_version: 1 },
            },
          }
        : {}),
    },
  };
}

/**
 * The older layout's build output → pack-v1 files: `components/<id>.wasm`, assets as they are, the `.ygtc`
 * sources and their JSON under `flows/<id>/` (as upstream's `--dev` builds carry them), `pack.lock.cbor`,
 * and a manifest with the flows compiled to flow-v1 and every component's sha256 in
 * `greentic.pack.component_sources@v1`, so a signature over the manifest covers every wasm byte.
 */
export function packV1FromLegacy(
  legacy: PackManifest,
  legacyFiles: readonly PackFile[],
): { manifest: PackV1Manifest; files: PackFile[] } {
  const byPath = new Map(legacyFiles.map((f) => [f.path, f.bytes]));
  const files: PackFile[] = [];
  const componentIds = new Set(legacy.components.map((c) => c.name));
  const components: PackV1Component[] = [];
  const sources: JsonValue[] = [];
  const lock: Parameters<typeof buildPackLock>[0][number][] = [];
  for (const c of legacy.components) {
    const wasm = byPath.get(c.file_wasm);
    if (!wasm)
      throw new PackError('pack_file_missing', `component '${c.name}': '${c.file_wasm}' was not built`);
    const wasmPath = `components/${c.name}.wasm`;
    files.push({ path: wasmPath, bytes: wasm });
    if (c.manifest_file) {
      const m = byPath.get(c.manifest_file);
      if (m) files.push({ path: `components/${c.name}.manifest.json`, bytes: m });
    }
    const world = c.world ?? 'greentic:component@0.6.0';
    const digest = sha256Pin(wasm);
    const ref = `file://${wasmPath}`;
    components.push({
      id: c.name,
      version: c.version,
      supports: ['messaging'],
      world,
      profiles: { default: 'stateless', supported: ['stateless'] },
      capabilities: { wasi: { random: false, clocks: false }, host: {} },
      configurators: null,
      operations: (c.operations ?? []).map((name) => ({ name, input_schema: null, output_schema: null })),
      config_schema: null,
      resources: {},
      dev_flows: {},
    });
    sources.push({
      artifact: { inline: { wasm_path: wasmPath } },
      component_id: c.name,
      name: c.name,
      resolved: { digest },
      source: ref,
    });
    lock.push({ id: c.name, version: c.version, world, ref, digest, operations: c.operations ?? [] });
  }
  const flows: FlowV1Entry[] = [];
  const defaultFlow = legacy.meta.entry_flows[0];
  for (const f of legacy.flows) {
    const yaml = byPath.get(f.file_yaml);
    const json = byPath.get(f.file_json);
    if (!yaml || !json) throw new PackError('pack_file_missing', `flow '${f.id}' was not built`);
    files.push({ path: f.file_yaml, bytes: yaml }, { path: f.file_json, bytes: json });
    const doc = JSON.parse(new TextDecoder().decode(json)) as Record<string, unknown>;
    const flow = compileYgtcToFlowV1({ doc, start: f.entry, hasComponent: (id) => componentIds.has(id) });
    flows.push({
      id: f.id,
      kind: flow.kind,
      flow,
      tags: f.id === defaultFlow ? ['default'] : [],
      entrypoints: ['default'],
    });
  }
  for (const f of legacyFiles) if (f.path.startsWith('assets/')) files.push(f);
  files.push({ path: PACK_LOCK_CBOR, bytes: buildPackLock(lock) });
  const manifest = composeManifestV1({
    packId: legacy.meta.pack_id,
    ...(legacy.meta.name !== legacy.meta.pack_id ? { name: legacy.meta.name } : {}),
    version: legacy.meta.version,
    kind: 'application',
    publisher: legacy.meta.authors[0] ?? '',
    components,
    flows,
    files,
    sources,
  });
  return { manifest, files };
}

export interface BuildV1Options extends BuildOptions {
  /** `key_id` of the signature; default the key's fingerprint. */
  keyId?: string;
}

export interface BuildV1Result extends PackV1Archive {
  warnings: string[];
}

/**
 * `greentic-pack build --format pack-v1`: the same pack directory, the same validation (flows against the
 * components' described operations) as the older layout's build, written as a pack-v1 archive.
 */
export async function buildPackV1FromDir(dir: string, opts: BuildV1Options = {}): Promise<BuildV1Result> {
  const { key, keyId, ...rest } = opts;
  const legacy = await buildPackFromDir(dir, rest);
  const { manifest, files } = packV1FromLegacy(legacy.manifest, legacy.files);
  opts.progress?.(
    `writing pack-v1: ${files.length} payload file(s) + manifest.cbor, sbom.cbor${key ? ', signature' : ''}`,
  );
  const archive = await assemblePackV1({
    manifest,
    files,
    ...(key ? { key } : {}),
    ...(keyId ? { keyId } : {}),
  });
  return { ...archive, warnings: legacy.warnings };
}

/**
 * Signs (or re-signs) a pack-v1 archive: it must match its own SBOM exactly first (a repacked or altered
 * archive is never blessed), then its manifest is signed and the archive rewritten with a fresh SBOM.
 */
export async function signPackV1(
  archive: Uint8Array,
  key: Ed25519KeyPair,
  opts: { label: string; keyId?: string; limits?: ArchiveLimits },
): Promise<PackV1Archive> {
  const files = await readArchive(archive, opts.label, opts.limits);
  const sbom = files.get(SBOM_CBOR);
  if (!sbom) throw new PackError('pack_sbom_missing', `${opts.label}: no sbom.cbor`);
  const mismatch = sbomMismatchesV1(files, parseSbomV1(sbom, opts.label), opts.label, SBOM_CBOR)[0];
  if (mismatch) throw new PackError(mismatch.code, mismatch.message, { entry: mismatch.path });
  const manifestBytes = files.get(MANIFEST_CBOR);
  if (!manifestBytes) throw new PackError('pack_manifest_missing', `${opts.label}: no manifest.cbor`);
  const manifest = decodeManifestV1(manifestBytes, opts.label);
  const payload: PackFile[] = [];
  for (const [path, bytes] of files)
    if (path !== MANIFEST_CBOR && path !== SBOM_CBOR) payload.push({ path, bytes });
  return assemblePackV1({
    manifest: { ...manifest, signatures: [] },
    files: payload,
    key,
    ...(opts.keyId ? { keyId: opts.keyId } : {}),
  });
}
