import { PackError } from '../../common/errors.js';
import { BUILTIN_OPERATIONS } from '../../flows/operations.js';
import { MANIFEST_CBOR, SBOM_JSON } from '../format/constants.js';
import { sha256Hex } from '../format/hash.js';
import { verify } from '../format/keys.js';
import { parseSbom, type SbomEntry } from '../format/sbom.js';
import { checkEntryName } from '../format/zip-reader.js';
import {
  componentManifestsV1,
  componentSourcesV1,
  payloadDigestsV1,
  type ComponentSourceV1,
} from '../format/pack-v1/extensions-v1.js';
import {
  effectiveComponentId,
  entryNode,
  isBuiltinComponentId,
  isComponentExecId,
  type FlowV1Entry,
  type FlowV1Node,
} from '../../flows/flow-v1.js';
import { decodeManifestV1, encodeManifestV1, type PackV1Manifest } from '../format/pack-v1/manifest-v1.js';
import {
  PACK_LOCK_CBOR,
  SBOM_CBOR,
  V1_UNLISTED,
  parseSbomV1,
  sbomMismatchesV1,
} from '../format/pack-v1/sbom-v1.js';
import { decodeWire } from '../format/pack-v1/wire-cbor.js';
import type { TrustPolicy } from './trust.js';

/** A component of a pack-v1 archive the runner can load: its wasm, by component id. */
export interface PackV1ComponentFile {
  id: string;
  version: string;
  path: string;
  bytes: Uint8Array;
}

export interface PackV1SignatureCheck {
  /** Fingerprint of the trusted key that verified a signature. */
  signer?: string;
  /** `key_id` of the signature that verified (or of the first one, when none could be checked). */
  keyId?: string;
  warnings: string[];
}

export interface VerifiedPackV1 {
  manifest: PackV1Manifest;
  files: Map<string, Uint8Array>;
  sbom: SbomEntry[];
  sbomFile: string;
  signature: PackV1SignatureCheck;
  /** Every bundled component wasm, by component id. */
  components: Map<string, PackV1ComponentFile>;
  /** The manifest's flows less those the dev policy left out (a component they call is not bundled). */
  runnableFlows: FlowV1Entry[];
  /** Signature warnings plus integrity findings the dev policy let through. */
  warnings: string[];
  defaultEntrypoint?: { flow: string; node: string };
  /** Files whose sha256 the (signed) manifest pins; only these may be trusted beyond the manifest itself. */
  pinnedFiles: ReadonlySet<string>;
}

export interface OpenPackV1Options {
  label: string;
  policy: TrustPolicy;
  expectedId?: string;
}

/** Files whose stale SBOM entries the `dev` policy tolerates: upstream demo packs were repacked by hand. */
const DEV_TOLERATED_STALE = new Set([MANIFEST_CBOR, PACK_LOCK_CBOR]);

/** Op keys upstream's compiler and this runner's executor treat as built-ins (no wasm). */
const COMPILER_BUILTINS = new Set(['questions', 'template', 'mcp']);

function isBuiltin(id: string): boolean {
  return isBuiltinComponentId(id) || BUILTIN_OPERATIONS.has(id) || COMPILER_BUILTINS.has(id);
}

/** Component ids a node needs wasm for: its effective component, and the one an exec node's mapping names. */
function componentsNeeded(node: FlowV1Node): string[] {
  const out: string[] = [];
  const eff = effectiveComponentId(node);
  if (eff !== undefined && !isBuiltin(eff)) out.push(eff);
  const m = node.input.mapping;
  const named = m !== null && typeof m === 'object' && !Array.isArray(m) ? m['component'] : undefined;
  // `mcp.exec`-style built-ins name the pack component they call in their mapping.
  if (
    typeof named === 'string' &&
    (isComponentExecId(node.component.id) || BUILTIN_OPERATIONS.has(node.component.id)) &&
    !named.includes('://') &&
    !isBuiltin(named)
  ) {
    out.push(named);
  }
  return [...new Set(out)];
}

/**
 * Checks the pack-v1 signatures (ed25519 over the manifest re-encoded with an empty signature list) against
 * the trusted keys. `key_id` is only a label upstream, so every trusted key is tried; a signature whose
 * `key_id` names a trusted key's fingerprint and does not verify is tampering, refused under every policy.
 */
export function verifyPackV1Signatures(
  m: PackV1Manifest,
  policy: TrustPolicy,
  label: string,
): PackV1SignatureCheck {
  const warnings: string[] = [];
  if (m.signatures.length === 0) {
    if (policy.mode === 'strict') {
      throw new PackError(
        'pack_signature_missing',
        `${label}: the pack is unsigned and the trust policy is strict`,
      );
    }
    warnings.push('pack is unsigned (allowed by the dev trust policy)');
    return { warnings };
  }
  const signed = encodeManifestV1(m, { emptySignatures: true });
  const keys = [...policy.keys.values()];
  let named: string | undefined;
  for (const s of m.signatures) {
    if (s.algorithm !== 'ed25519') {
      warnings.push(`signature '${s.key_id}' uses unsupported algorithm '${s.algorithm}' (ignored)`);
      continue;
    }
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s.signature)) {
      throw new PackError(
        'pack_signature_malformed',
        `${label}: signature '${s.key_id}' is not standard base64`,
      );
    }
    const sig = new Uint8Array(Buffer.from(s.signature, 'base64'));
    if (sig.length !== 64) {
      throw new PackError(
        'pack_signature_malformed',
        `${label}: signature '${s.key_id}' must decode to 64 bytes, got ${sig.length}`,
      );
    }
    for (const k of keys) {
      if (verify(sig, signed, k.publicKey)) return { signer: k.fingerprint, keyId: s.key_id, warnings };
    }
    if (policy.keys.has(s.key_id)) named = s.key_id;
  }
  if (named !== undefined) {
    throw new PackError(
      'pack_signature_invalid',
      `${label}: the signature does not verify with trusted key ${named} (the manifest was changed after signing)`,
    );
  }
  const ids = m.signatures.map((s) => s.key_id).join(', ');
  if (policy.mode === 'strict') {
    throw new PackError(
      'pack_signature_untrusted',
      `${label}: signed by ${ids}, which no trusted key verifies`,
      {
        keyIds: m.signatures.map((s) => s.key_id),
      },
    );
  }
  warnings.push(`signed by untrusted key(s) ${ids} (not checked; allowed by the dev trust policy)`);
  return { keyId: m.signatures[0]!.key_id, warnings };
}

/**
 * The pack's default messaging entrypoint: the messaging flow tagged `default`, else `main`, else the
 * first messaging flow with nodes; its `entrypoints.default` node, else its first node.
 */
export function defaultEntrypointV1(
  flows: readonly FlowV1Entry[],
): { flow: string; node: string } | undefined {
  const messaging = flows.filter((f) => f.kind === 'messaging' && f.flow.nodes.length > 0);
  const pick =
    messaging.find((f) => f.tags.includes('default')) ??
    messaging.find((f) => f.id === 'main') ??
    messaging[0];
  if (!pick) return undefined;
  const node = entryNode(pick.flow);
  return node ? { flow: pick.id, node: node.id } : undefined;
}

/** The first node of `f` that calls a component the archive does not bundle. */
function missingComponent(
  f: FlowV1Entry,
  bundled: ReadonlyMap<string, unknown>,
): { node: string; component: string } | undefined {
  for (const n of f.flow.nodes) {
    for (const id of componentsNeeded(n)) if (!bundled.has(id)) return { node: n.id, component: id };
  }
  return undefined;
}

/** Component versions from `pack.lock.cbor`, the only record of them when `components[]` is empty. */
function lockVersions(
  files: ReadonlyMap<string, Uint8Array>,
  label: string,
  warnings: string[],
): [string, string][] {
  const bytes = files.get(PACK_LOCK_CBOR);
  if (!bytes) return [];
  try {
    const lock = decodeWire(bytes);
    const comps = lock instanceof Map ? lock.get('components') : undefined;
    if (!(comps instanceof Map)) return [];
    const out: [string, string][] = [];
    for (const [id, c] of comps) {
      const v = c instanceof Map ? c.get('component_version') : undefined;
      if (typeof v === 'string') out.push([id, v]);
    }
    return out;
  } catch (e) {
    warnings.push(
      `${label}: pack.lock.cbor is unreadable (${(e as Error).message}); it is not needed to run`,
    );
    return [];
  }
}

function sha256Pin(bytes: Uint8Array): string {
  return `sha256:${sha256Hex(bytes)}`;
}

/**
 * Verifies an already-read pack-v1 archive (structure and caps are checked by `readArchive`): SBOM (every
 * file's BLAKE3, both ways), manifest (symbols, ids, routing targets), signature, the manifest's component
 * digests (sha256 per `component_sources`, `content_hash` per `component_manifests`), and that every
 * component a flow calls is in the archive.
 */
export function verifyPackV1Files(files: Map<string, Uint8Array>, opts: OpenPackV1Options): VerifiedPackV1 {
  const { label } = opts;
  const warnings: string[] = [];
  const sbomFile = files.has(SBOM_CBOR) ? SBOM_CBOR : files.has(SBOM_JSON) ? SBOM_JSON : undefined;
  if (!sbomFile) {
    throw new PackError('pack_sbom_missing', `${label}: the archive has neither sbom.cbor nor sbom.json`);
  }
  const sbom =
    sbomFile === SBOM_CBOR
      ? parseSbomV1(files.get(SBOM_CBOR)!, label)
      : parseSbom(files.get(SBOM_JSON)!, label);
  const mismatches = sbomMismatchesV1(files, sbom, label, sbomFile);
  if (mismatches.length > 0) {
    const tolerated = opts.policy.mode === 'dev' && mismatches.every((x) => DEV_TOLERATED_STALE.has(x.path));
    if (!tolerated) {
      const first = mismatches.find((x) => !DEV_TOLERATED_STALE.has(x.path)) ?? mismatches[0]!;
      throw new PackError(first.code, first.message, { entry: first.path });
    }
    warnings.push(
      `STALE SBOM: ${sbomFile} does not match ${mismatches.map((x) => x.path).join(' and ')} (the archive was repacked without refreshing its SBOM); loaded only because the trust policy is dev — the strict policy refuses this pack`,
    );
  }
  const manifestBytes = files.get(MANIFEST_CBOR);
  if (!manifestBytes)
    throw new PackError('pack_manifest_missing', `${label}: the archive has no manifest.cbor`);
  const manifest = decodeManifestV1(manifestBytes, label);
  const signature = verifyPackV1Signatures(manifest, opts.policy, label);
  if (opts.expectedId !== undefined && manifest.pack_id !== opts.expectedId) {
    throw new PackError(
      'pack_id_mismatch',
      `${label}: pack id '${manifest.pack_id}' does not match the bundle's pack '${opts.expectedId}'`,
    );
  }

  const pathOf = (p: string, what: string): string => {
    checkEntryName(p, `${label}: ${what}`);
    return p;
  };
  // component_sources: the manifest's (signed) sha256 of each bundled wasm.
  const sources = componentSourcesV1(manifest, label);
  const sourceById = new Map<string, ComponentSourceV1>();
  for (const s of sources) {
    const id = s.component_id ?? s.name;
    sourceById.set(id, s);
    if (s.wasm_path === undefined) continue;
    const p = pathOf(s.wasm_path, `component '${id}'`);
    const bytes = files.get(p);
    if (!bytes) {
      throw new PackError(
        'pack_manifest_component_missing',
        `${label}: component '${id}' is declared at '${p}', which the archive does not have`,
        { component: id, entry: p },
      );
    }
    const actual = sha256Pin(bytes);
    if (actual !== s.digest) {
      throw new PackError(
        'pack_manifest_hash_mismatch',
        `${label}: component '${id}' digest mismatch: the manifest says ${s.digest}, '${p}' is ${actual}`,
        { component: id, entry: p },
      );
    }
  }
  const pinned = payloadDigestsV1(manifest, label);
  if (pinned) {
    for (const [p, digest] of pinned) {
      const bytes = files.get(pathOf(p, 'payload file'));
      if (!bytes) {
        throw new PackError(
          'pack_manifest_file_missing',
          `${label}: the manifest pins '${p}', which the archive does not have`,
          { entry: p },
        );
      }
      if (sha256Pin(bytes) !== digest) {
        throw new PackError(
          'pack_manifest_hash_mismatch',
          `${label}: '${p}' does not have the sha256 the manifest pins (${digest})`,
          { entry: p },
        );
      }
    }
    for (const p of files.keys()) {
      if (p !== MANIFEST_CBOR && !V1_UNLISTED.has(p) && !pinned.has(p)) {
        throw new PackError(
          'pack_manifest_file_unlisted',
          `${label}: '${p}' is in the archive but not among the files the manifest pins`,
          { entry: p },
        );
      }
    }
  }
  for (const e of componentManifestsV1(manifest, label)) {
    const p = pathOf(e.manifest_file, `component manifest '${e.component_id}'`);
    const bytes = files.get(p);
    if (!bytes) {
      throw new PackError(
        'pack_manifest_component_missing',
        `${label}: component manifest of '${e.component_id}' ('${p}') is missing`,
        { component: e.component_id, entry: p },
      );
    }
    if (e.content_hash !== undefined && sha256Pin(bytes) !== e.content_hash) {
      throw new PackError(
        'pack_manifest_hash_mismatch',
        `${label}: component manifest '${p}' does not have the manifest's content_hash ${e.content_hash}`,
        { component: e.component_id, entry: p },
      );
    }
  }

  // Every bundled component by id: declared sources first, then the `components/<id>.wasm` convention.
  const versions = new Map([
    ...lockVersions(files, label, warnings),
    ...manifest.components.map((c) => [c.id, c.version] as const),
  ]);
  const components = new Map<string, PackV1ComponentFile>();
  const add = (id: string, p: string): void => {
    const bytes = files.get(p);
    if (bytes && !components.has(id))
      components.set(id, { id, version: versions.get(id) ?? '0.0.0', path: p, bytes });
  };
  for (const [id, s] of sourceById) if (s.wasm_path !== undefined) add(id, s.wasm_path);
  for (const p of files.keys()) {
    const m = /^components\/([^/]+)\.wasm$/.exec(p);
    if (m) add(m[1]!, p);
  }
  for (const c of manifest.components) {
    if (!components.has(c.id)) warnings.push(`component '${c.id}' is listed in the manifest but not bundled`);
  }
  const runnableFlows: FlowV1Entry[] = [];
  for (const f of manifest.flows) {
    if (f.flow.nodes.length === 0) warnings.push(`flow '${f.id}' has no nodes (it cannot run)`);
    const missing = missingComponent(f, components);
    if (!missing) {
      runnableFlows.push(f);
      continue;
    }
    const remote = sourceById.get(missing.component);
    const what = `flow '${f.id}' node '${missing.node}' calls component '${missing.component}', which the archive does not bundle${remote ? ` (its source is remote: ${remote.source})` : ''}`;
    // Upstream loads such packs (greentic-demo's msg-event-app is one) and fails the flow when it runs;
    // under dev the pack's other flows serve and this one is left out, never under strict.
    if (opts.policy.mode === 'dev') {
      warnings.push(
        `${what}: the flow is left out (allowed by the dev trust policy; strict refuses the pack)`,
      );
      continue;
    }
    throw new PackError('pack_manifest_component_missing', `${label}: ${what}`, {
      flow: f.id,
      node: missing.node,
      component: missing.component,
    });
  }
  const defaultEntrypoint = defaultEntrypointV1(runnableFlows);
  return {
    manifest,
    files,
    sbom,
    sbomFile,
    signature,
    components,
    runnableFlows,
    warnings: [...signature.warnings, ...warnings],
    ...(defaultEntrypoint ? { defaultEntrypoint } : {}),
    pinnedFiles: new Set(pinned?.keys() ?? []),
  };
}
