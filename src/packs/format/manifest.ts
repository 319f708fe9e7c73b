import { Ajv, type ErrorObject } from 'ajv';
import { PackError } from '../../common/errors.js';
import { CanonicalCborError, decodeCanonical, encodeCanonical } from './canonical-cbor.js';
import { PACK_FORMAT_VERSION } from './constants.js';
import { blake3Hex } from './hash.js';
import { WireCborError, decodeWire, wireToJson } from './pack-v1/wire-cbor.js';

/** `manifest.cbor` / `manifest.json`, with the public format's field names. */
export interface PackMeta {
  packVersion: number;
  pack_id: string;
  version: string;
  name: string;
  description: string | null;
  authors: string[];
  entry_flows: string[];
  created_at_utc: string;
  annotations: Record<string, unknown>;
}

export interface FlowEntry {
  id: string;
  kind: string;
  entry: string;
  file_yaml: string;
  file_json: string;
  /** BLAKE3 of `file_yaml`. */
  hash_blake3: string;
}

export interface ComponentEntry {
  name: string;
  version: string;
  file_wasm: string;
  hash_blake3: string;
  schema_file: string | null;
  manifest_file: string | null;
  world: string | null;
  capabilities: unknown;
  /**
   * Operation names the component declares (0.6 `describe()`; `execute` for 0.1), recorded at
   * build time; null when the build did not describe it. Absent in packs built before.
   */
  operations?: string[] | null;
}

export interface PackManifest {
  meta: PackMeta;
  flows: FlowEntry[];
  components: ComponentEntry[];
}

const ID = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const HEX64 = '^[0-9a-f]{64}$';
const PATH = { type: 'string', minLength: 1, maxLength: 1024 } as const;

const SCHEMA = {
  type: 'object',
  required: ['meta', 'flows', 'components'],
  properties: {
    meta: {
      type: 'object',
      required: ['packVersion', 'pack_id', 'version', 'name', 'entry_flows', 'created_at_utc'],
      properties: {
        packVersion: { const: PACK_FORMAT_VERSION },
        pack_id: { type: 'string', pattern: ID, maxLength: 200 },
        version: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+([-+][0-9A-Za-z.+-]+)?$' },
        name: { type: 'string', minLength: 1 },
        description: { type: ['string', 'null'] },
        authors: { type: 'array', items: { type: 'string' } },
        entry_flows: { type: 'array', items: { type: 'string' } },
        created_at_utc: { type: 'string', minLength: 1 },
        annotations: { type: 'object' },
      },
    },
    flows: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'kind', 'entry', 'file_yaml', 'file_json', 'hash_blake3'],
        properties: {
          id: { type: 'string', pattern: ID, maxLength: 200 },
          kind: { type: 'string' },
          entry: { type: 'string' },
          file_yaml: PATH,
          file_json: PATH,
          hash_blake3: { type: 'string', pattern: HEX64 },
        },
      },
    },
    components: {
      type: 'array',
      items: {
        type: 'object',
        required: ['name', 'version', 'file_wasm', 'hash_blake3'],
        properties: {
          name: { type: 'string', pattern: ID, maxLength: 200 },
          version: { type: 'string', minLength: 1 },
          file_wasm: PATH,
          hash_blake3: { type: 'string', pattern: HEX64 },
          schema_file: { type: ['string', 'null'] },
          manifest_file: { type: ['string', 'null'] },
          world: { type: ['string', 'null'] },
          operations: { type: ['array', 'null'], items: { type: 'string' } },
        },
      },
    },
  },
} as const;

const validate = new Ajv({ allErrors: true, strict: false }).compile(SCHEMA);

function describe(e: ErrorObject): string {
  const at = e.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(root)';
  if (e.keyword === 'required')
    return `${at}: missing '${(e.params as { missingProperty: string }).missingProperty}'`;
  return `${at}: ${e.message ?? 'invalid'}`;
}

export function encodeManifest(m: PackManifest): { cbor: Uint8Array; json: Uint8Array } {
  return {
    cbor: encodeCanonical(m),
    json: new TextEncoder().encode(JSON.stringify(m, null, 2)),
  };
}

/** Parses the signed CBOR manifest and checks its shape; nothing of the pack is used before this. */
export function decodeManifest(bytes: Uint8Array, label: string): PackManifest {
  let value: unknown;
  try {
    value = decodeCanonical(bytes);
  } catch (e) {
    if (!(e instanceof CanonicalCborError)) throw e;
    // Upstream's older builders wrote this layout with serde_cbor: self-describe tag 55799 and keys in
    // declaration order. Decoding stays unambiguous (no duplicate keys, other tags or trailing bytes).
    try {
      value = wireToJson(decodeWire(bytes));
    } catch (e2) {
      if (e2 instanceof WireCborError)
        throw new PackError(
          'pack_manifest_invalid',
          `${label}: manifest.cbor is ${e.message} (${e2.message})`,
        );
      throw e2;
    }
  }
  if (!validate(value)) {
    const msgs = [...new Set((validate.errors ?? []).map(describe))];
    throw new PackError('pack_manifest_invalid', `${label}: manifest.cbor: ${msgs.join('; ')}`, {
      issues: msgs,
    });
  }
  return value as unknown as PackManifest;
}

/**
 * Cross-checks the manifest against the (SBOM-verified) files: every flow and component it
 * names is present with the digest it states, ids are unique, entry flows exist, and the JSON
 * twin says the same as the CBOR.
 */
export function checkManifestAgainstFiles(
  m: PackManifest,
  files: ReadonlyMap<string, Uint8Array>,
  label: string,
  /** BLAKE3 per path already checked against the bytes (the SBOM), so nothing is hashed twice. */
  verified?: ReadonlyMap<string, string>,
): void {
  const hashOf = (p: string): string => verified?.get(p) ?? blake3Hex(files.get(p)!);
  const flowIds = new Set<string>();
  for (const f of m.flows) {
    if (flowIds.has(f.id))
      throw new PackError('pack_manifest_invalid', `${label}: manifest lists flow '${f.id}' twice`);
    flowIds.add(f.id);
    for (const p of [f.file_yaml, f.file_json]) {
      if (!p.startsWith('flows/'))
        throw new PackError('pack_manifest_invalid', `${label}: flow '${f.id}': '${p}' is not under flows/`);
      if (!files.has(p)) {
        throw new PackError(
          'pack_manifest_flow_missing',
          `${label}: manifest names flow '${f.id}' at '${p}', which the archive does not have`,
          {
            flow: f.id,
            entry: p,
          },
        );
      }
    }
    // Ours hash the .ygtc; upstream's builder hashes the flow's JSON.
    if (hashOf(f.file_yaml) !== f.hash_blake3 && hashOf(f.file_json) !== f.hash_blake3) {
      throw new PackError(
        'pack_manifest_hash_mismatch',
        `${label}: flow '${f.id}': '${f.file_yaml}' does not have the manifest's BLAKE3`,
        { flow: f.id },
      );
    }
  }
  for (const e of m.meta.entry_flows) {
    if (!flowIds.has(e))
      throw new PackError(
        'pack_manifest_flow_missing',
        `${label}: entry flow '${e}' is not among the manifest's flows`,
        { flow: e },
      );
  }
  const names = new Set<string>();
  for (const c of m.components) {
    if (names.has(c.name))
      throw new PackError('pack_manifest_invalid', `${label}: manifest lists component '${c.name}' twice`);
    names.add(c.name);
    if (!c.file_wasm.startsWith('components/')) {
      throw new PackError(
        'pack_manifest_invalid',
        `${label}: component '${c.name}': '${c.file_wasm}' is not under components/`,
      );
    }
    const wasm = files.get(c.file_wasm);
    if (!wasm) {
      throw new PackError(
        'pack_manifest_component_missing',
        `${label}: manifest names component '${c.name}' at '${c.file_wasm}', which the archive does not have`,
        {
          component: c.name,
        },
      );
    }
    if (hashOf(c.file_wasm) !== c.hash_blake3) {
      throw new PackError(
        'pack_manifest_hash_mismatch',
        `${label}: component '${c.name}': '${c.file_wasm}' does not have the manifest's BLAKE3`,
        {
          component: c.name,
        },
      );
    }
    for (const p of [c.manifest_file, c.schema_file]) {
      if (p && !files.has(p))
        throw new PackError(
          'pack_manifest_component_missing',
          `${label}: component '${c.name}': '${p}' is missing`,
        );
    }
  }
  const json = files.get('manifest.json');
  if (json) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(json));
    } catch (e) {
      throw new PackError(
        'pack_manifest_invalid',
        `${label}: manifest.json is not valid JSON: ${(e as Error).message}`,
      );
    }
    let same: boolean;
    try {
      // Compare meaning, not bytes: manifest.cbor may be the older layout's declaration-order encoding.
      same = Buffer.compare(Buffer.from(encodeCanonical(parsed)), Buffer.from(encodeCanonical(m))) === 0;
    } catch {
      same = false;
    }
    if (!same) {
      throw new PackError(
        'pack_manifest_invalid',
        `${label}: manifest.json does not say the same as manifest.cbor`,
      );
    }
  }
}
