import { PackError } from '../../../common/errors.js';
import {
  FLOW_V1_KINDS,
  type FlowV1,
  type FlowV1Entry,
  type FlowV1Kind,
  type FlowV1Mapping,
  type FlowV1Node,
  type FlowV1Routing,
  type FlowV1Telemetry,
  type JsonValue,
} from '../../../flows/flow-v1.js';
import {
  WireCborError,
  decodeWire,
  encodeWire,
  jsonToWire,
  wireToJson,
  type WireMap,
  type WireValue,
} from './wire-cbor.js';

/**
 * The pack-v1 `manifest.cbor` (greentic-types `PackManifest`, schema_version "pack-v1") with every symbol
 * index resolved to its name. Struct-shaped values this runner does not interpret (component profiles,
 * capabilities, resources, secret requirements, bootstrap) are kept as JSON in their wire key order, so a
 * decoded manifest re-encodes to the bytes it came from.
 */

export const PACK_V1_SCHEMA = 'pack-v1';
export type PackV1Kind = 'application' | 'provider' | 'infrastructure' | 'library';
const PACK_KINDS: readonly string[] = ['application', 'provider', 'infrastructure', 'library'];

/** upstream `validate_identifier`: non-empty, ASCII letters, digits, `.`, `_`, `-` (reverse-DNS ids are fine). */
export const IDENTIFIER = /^[A-Za-z0-9._-]+$/;
const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export interface PackV1Operation {
  name: string;
  input_schema: JsonValue;
  output_schema: JsonValue;
}

export interface PackV1Component {
  id: string;
  version: string;
  supports: string[];
  world: string;
  /** `ComponentProfiles` `{default?, supported}`. */
  profiles: JsonValue;
  /** `ComponentCapabilities` `{wasi, host}`. */
  capabilities: JsonValue;
  configurators: JsonValue;
  operations: PackV1Operation[];
  config_schema: JsonValue;
  resources: JsonValue;
  dev_flows: Record<string, JsonValue>;
}

export interface PackV1Dependency {
  alias: string;
  pack_id: string;
  version_req: string;
  required_capabilities: string[];
}

export interface PackV1Capability {
  name: string;
  description: string | null;
}

export interface PackV1Signature {
  key_id: string;
  /** `"ed25519"`, or the name carried by upstream's `{"other": …}` variant. */
  algorithm: string;
  /** Standard base64, padded (upstream `serde_with::base64`), a text string even in CBOR. */
  signature: string;
}

export interface PackV1ExtensionRef {
  kind: string;
  version: string;
  digest?: string;
  location?: string;
  inline?: JsonValue;
}

export interface PackV1Manifest {
  schema_version: string;
  pack_id: string;
  name?: string;
  version: string;
  kind: PackV1Kind;
  publisher: string;
  components: PackV1Component[];
  flows: FlowV1Entry[];
  dependencies: PackV1Dependency[];
  capabilities: PackV1Capability[];
  secret_requirements: JsonValue[];
  signatures: PackV1Signature[];
  bootstrap?: JsonValue;
  extensions?: Record<string, PackV1ExtensionRef>;
  agents?: Record<string, JsonValue>;
  /**
   * Wire details that carry no meaning but decide the bytes: whether nodes carry an `err_map` key (types
   * ≥ 0.4.x write `null`; older packs omit it). Defaults to the current form.
   */
  wire?: { nodeErrMap: boolean };
}

// ------------------------------------------------------------------------------------------------- decode

class Ctx {
  constructor(
    readonly label: string,
    readonly symbols: Record<string, string[]> = {},
  ) {}

  fail(at: string, why: string): never {
    throw new PackError('pack_manifest_invalid', `${this.label}: manifest.cbor ${at}: ${why}`, { at });
  }

  map(v: WireValue | undefined, at: string): WireMap {
    if (!(v instanceof Map)) this.fail(at, 'must be a map');
    return v;
  }

  req(m: WireMap, key: string, at: string): WireValue {
    if (!m.has(key)) this.fail(at, `missing '${key}'`);
    return m.get(key)!;
  }

  str(v: WireValue | undefined, at: string): string {
    if (typeof v !== 'string') this.fail(at, 'must be a text string');
    return v;
  }

  optStr(v: WireValue | undefined, at: string): string | undefined {
    return v === undefined || v === null ? undefined : this.str(v, at);
  }

  arr(v: WireValue | undefined, at: string): WireValue[] {
    if (!Array.isArray(v)) this.fail(at, 'must be an array');
    return v;
  }

  strs(v: WireValue | undefined, at: string): string[] {
    return this.arr(v, at).map((x, i) => this.str(x, `${at}[${i}]`));
  }

  json(v: WireValue | undefined, at: string): JsonValue {
    if (v === undefined) return null;
    try {
      return wireToJson(v, at) as JsonValue;
    } catch (e) {
      return this.fail(at, (e as Error).message);
    }
  }

  id(v: WireValue | undefined, at: string): string {
    const s = this.str(v, at);
    if (!IDENTIFIER.test(s))
      this.fail(at, `'${s}' is not a valid identifier (ASCII letters, digits, '.', '_', '-')`);
    return s;
  }

  /** A symbol reference: an index into `symbols.<table>` (or, as upstream's decoder allows, the name itself). */
  sym(v: WireValue | undefined, table: string, at: string): string {
    if (typeof v === 'string') return v;
    if (typeof v === 'bigint') this.outOfRange(v, table, at);
    if (typeof v !== 'number' || !Number.isInteger(v))
      this.fail(at, `must be an index into symbols.${table}`);
    if (v < 0) this.outOfRange(v, table, at);
    const name = this.symbols[table]?.[v];
    if (name === undefined) this.outOfRange(v, table, at);
    return name;
  }

  outOfRange(v: number | bigint, table: string, at: string): never {
    throw new PackError(
      'pack_manifest_symbol_invalid',
      `${this.label}: manifest.cbor ${at}: invalid symbol index ${v} in ${table} (it has ${this.symbols[table]?.length ?? 0} entries)`,
      { at, table, index: String(v) },
    );
  }
}

function decodeMapping(c: Ctx, v: WireValue | undefined, at: string): FlowV1Mapping {
  const m = c.map(v, at);
  return { mapping: c.json(m.get('mapping') ?? null, `${at}.mapping`) };
}

function decodeRouting(c: Ctx, v: WireValue | undefined, at: string): FlowV1Routing {
  if (typeof v === 'string') {
    const k = v.toLowerCase();
    if (k === 'end') return { kind: 'end' };
    if (k === 'reply') return { kind: 'reply' };
    c.fail(at, `unknown routing '${v}'`);
  }
  const m = c.map(v, at);
  if (m.size !== 1) c.fail(at, 'routing must have exactly one variant');
  const [variant, body] = [...m][0]!;
  switch (variant.toLowerCase()) {
    case 'next': {
      const b = c.map(body, `${at}.${variant}`);
      return { kind: 'next', nodeId: c.sym(c.req(b, 'node_id', at), 'node_ids', `${at}.${variant}.node_id`) };
    }
    case 'branch': {
      const b = c.map(body, `${at}.${variant}`);
      const onStatus: Record<string, string> = {};
      const os = b.get('on_status');
      if (os !== undefined && os !== null) {
        for (const [k, x] of c.map(os, `${at}.on_status`))
          onStatus[k] = c.sym(x, 'node_ids', `${at}.on_status.${k}`);
      }
      const d = b.get('default');
      return {
        kind: 'branch',
        onStatus,
        ...(d !== undefined && d !== null ? { default: c.sym(d, 'node_ids', `${at}.default`) } : {}),
      };
    }
    case 'custom':
      return { kind: 'custom', value: c.json(body, `${at}.${variant}`) };
    case 'end':
      return { kind: 'end' };
    case 'reply':
      return { kind: 'reply' };
    default:
      return c.fail(at, `unknown routing variant '${variant}'`);
  }
}

function decodeTelemetry(c: Ctx, v: WireValue | undefined, at: string): FlowV1Telemetry {
  const m = c.map(v, at);
  const attributes: Record<string, string> = {};
  const attrs = m.get('attributes');
  if (attrs !== undefined)
    for (const [k, x] of c.map(attrs, `${at}.attributes`)) attributes[k] = c.str(x, `${at}.attributes.${k}`);
  const span = c.optStr(m.get('span_name'), `${at}.span_name`);
  const sampling = c.optStr(m.get('sampling'), `${at}.sampling`);
  return {
    ...(span !== undefined ? { span_name: span } : {}),
    attributes,
    ...(sampling !== undefined ? { sampling } : {}),
  };
}

function decodeKind(c: Ctx, v: WireValue | undefined, at: string): FlowV1Kind {
  const s = c.str(v, at);
  if (!(FLOW_V1_KINDS as readonly string[]).includes(s)) c.fail(at, `unknown flow kind '${s}'`);
  return s as FlowV1Kind;
}

function decodeNode(c: Ctx, v: WireValue, at: string, errMapSeen: { any: boolean }): FlowV1Node {
  const m = c.map(v, at);
  const comp = c.map(c.req(m, 'component', at), `${at}.component`);
  const alias = c.optStr(comp.get('pack_alias'), `${at}.component.pack_alias`);
  const op = c.optStr(comp.get('operation'), `${at}.component.operation`);
  const errMap = m.get('err_map');
  if (m.has('err_map')) errMapSeen.any = true;
  return {
    id: c.sym(c.req(m, 'id', at), 'node_ids', `${at}.id`),
    component: {
      id: c.sym(c.req(comp, 'id', `${at}.component`), 'component_ids', `${at}.component.id`),
      ...(alias !== undefined ? { pack_alias: alias } : {}),
      ...(op !== undefined ? { operation: op } : {}),
    },
    input: decodeMapping(c, c.req(m, 'input', at), `${at}.input`),
    output: decodeMapping(c, c.req(m, 'output', at), `${at}.output`),
    ...(errMap !== undefined && errMap !== null
      ? { err_map: decodeMapping(c, errMap, `${at}.err_map`) }
      : {}),
    routing: decodeRouting(c, c.req(m, 'routing', at), `${at}.routing`),
    telemetry: decodeTelemetry(c, c.req(m, 'telemetry', at), `${at}.telemetry`),
  };
}

function decodeFlow(c: Ctx, v: WireValue, at: string, errMapSeen: { any: boolean }): FlowV1 {
  const m = c.map(v, at);
  const entrypoints: Record<string, JsonValue> = {};
  for (const [k, x] of c.map(c.req(m, 'entrypoints', at), `${at}.entrypoints`)) {
    entrypoints[k] = c.json(x, `${at}.entrypoints.${k}`);
  }
  const nodes = c
    .arr(c.req(m, 'nodes', at), `${at}.nodes`)
    .map((n, i) => decodeNode(c, n, `${at}.nodes[${i}]`, errMapSeen));
  const seen = new Set<string>();
  for (const n of nodes) {
    if (seen.has(n.id)) c.fail(`${at}.nodes`, `node '${n.id}' appears twice`);
    seen.add(n.id);
  }
  const md = c.map(c.req(m, 'metadata', at), `${at}.metadata`);
  const title = c.optStr(md.get('title'), `${at}.metadata.title`);
  const description = c.optStr(md.get('description'), `${at}.metadata.description`);
  const flow: FlowV1 = {
    schema_version: c.str(c.req(m, 'schema_version', at), `${at}.schema_version`),
    id: c.id(c.req(m, 'id', at), `${at}.id`),
    kind: decodeKind(c, c.req(m, 'kind', at), `${at}.kind`),
    entrypoints,
    nodes,
    metadata: {
      ...(title !== undefined ? { title } : {}),
      ...(description !== undefined ? { description } : {}),
      tags: md.has('tags') ? c.strs(md.get('tags'), `${at}.metadata.tags`) : [],
      extra: c.json(md.get('extra') ?? null, `${at}.metadata.extra`),
    },
  };
  // Routing targets must be nodes of this flow (upstream's flow validation); Custom payloads are the executor's.
  for (const n of nodes) {
    const targets =
      n.routing.kind === 'next'
        ? [n.routing.nodeId]
        : n.routing.kind === 'branch'
          ? [...Object.values(n.routing.onStatus), ...(n.routing.default ? [n.routing.default] : [])]
          : [];
    for (const t of targets) {
      if (!seen.has(t))
        c.fail(`${at}.nodes`, `node '${n.id}' routes to '${t}', which is not a node of flow '${flow.id}'`);
    }
  }
  return flow;
}

function decodeComponent(c: Ctx, v: WireValue, at: string): PackV1Component {
  const m = c.map(v, at);
  const devFlows: Record<string, JsonValue> = {};
  const df = m.get('dev_flows');
  if (df !== undefined && df !== null)
    for (const [k, x] of c.map(df, `${at}.dev_flows`)) devFlows[k] = c.json(x, `${at}.dev_flows.${k}`);
  return {
    id: c.sym(c.req(m, 'id', at), 'component_ids', `${at}.id`),
    version: c.str(c.req(m, 'version', at), `${at}.version`),
    supports: c.strs(c.req(m, 'supports', at), `${at}.supports`),
    world: c.str(c.req(m, 'world', at), `${at}.world`),
    profiles: c.json(c.req(m, 'profiles', at), `${at}.profiles`),
    capabilities: c.json(c.req(m, 'capabilities', at), `${at}.capabilities`),
    configurators: c.json(m.get('configurators') ?? null, `${at}.configurators`),
    operations: c.arr(c.req(m, 'operations', at), `${at}.operations`).map((o, i) => {
      const om = c.map(o, `${at}.operations[${i}]`);
      return {
        name: c.str(c.req(om, 'name', at), `${at}.operations[${i}].name`),
        input_schema: c.json(om.get('input_schema') ?? null, `${at}.operations[${i}].input_schema`),
        output_schema: c.json(om.get('output_schema') ?? null, `${at}.operations[${i}].output_schema`),
      };
    }),
    config_schema: c.json(m.get('config_schema') ?? null, `${at}.config_schema`),
    resources: c.json(c.req(m, 'resources', at), `${at}.resources`),
    dev_flows: devFlows,
  };
}

function decodeSignature(c: Ctx, v: WireValue, at: string): PackV1Signature {
  const m = c.map(v, at);
  const alg = c.req(m, 'algorithm', at);
  let algorithm: string;
  if (typeof alg === 'string') algorithm = alg;
  else algorithm = c.str(c.map(alg, `${at}.algorithm`).get('other'), `${at}.algorithm.other`);
  return {
    key_id: c.str(c.req(m, 'key_id', at), `${at}.key_id`),
    algorithm,
    signature: c.str(c.req(m, 'signature', at), `${at}.signature`),
  };
}

/** True when a decoded `manifest.cbor` top level is the pack-v1 model (not the older `meta` layout). */
export function isPackV1Wire(v: WireValue): boolean {
  return v instanceof Map && v.has('schema_version') && !v.has('meta');
}

/**
 * Decodes a pack-v1 `manifest.cbor`: order-independent (upstream's decoder is plain serde), symbol indexes
 * resolved (out of range → `pack_manifest_symbol_invalid`), every id checked against upstream's rule.
 */
export function decodeManifestV1(bytes: Uint8Array, label: string): PackV1Manifest {
  let root: WireValue;
  try {
    root = decodeWire(bytes);
  } catch (e) {
    if (e instanceof WireCborError)
      throw new PackError('pack_manifest_invalid', `${label}: manifest.cbor is not valid CBOR: ${e.message}`);
    throw e;
  }
  return manifestV1FromWire(root, label);
}

export function manifestV1FromWire(root: WireValue, label: string): PackV1Manifest {
  const c0 = new Ctx(label);
  const m = c0.map(root, '(root)');
  const schema = c0.str(c0.req(m, 'schema_version', '(root)'), 'schema_version');
  if (schema !== PACK_V1_SCHEMA) c0.fail('schema_version', `'${schema}' is not '${PACK_V1_SCHEMA}'`);
  const symMap = c0.map(c0.req(m, 'symbols', '(root)'), 'symbols');
  const symbols: Record<string, string[]> = {};
  for (const table of ['component_ids', 'node_ids', 'capability_names', 'pack_ids']) {
    const v = symMap.get(table);
    symbols[table] = v === undefined ? [] : c0.strs(v, `symbols.${table}`);
    if (table !== 'capability_names') symbols[table]!.forEach((s, i) => c0.id(s, `symbols.${table}[${i}]`));
  }
  const c = new Ctx(label, symbols);
  const kind = c.str(c.req(m, 'kind', '(root)'), 'kind');
  if (!PACK_KINDS.includes(kind)) c.fail('kind', `unknown pack kind '${kind}'`);
  const version = c.str(c.req(m, 'version', '(root)'), 'version');
  if (!SEMVER.test(version)) c.fail('version', `'${version}' is not a semantic version`);
  const errMapSeen = { any: false };
  const flows = c.arr(c.req(m, 'flows', '(root)'), 'flows').map((f, i): FlowV1Entry => {
    const at = `flows[${i}]`;
    const fm = c.map(f, at);
    const flow = decodeFlow(c, c.req(fm, 'flow', at), `${at}.flow`, errMapSeen);
    const id = c.id(c.req(fm, 'id', at), `${at}.id`);
    if (id !== flow.id) c.fail(at, `entry id '${id}' differs from its flow's id '${flow.id}'`);
    return {
      id,
      kind: decodeKind(c, c.req(fm, 'kind', at), `${at}.kind`),
      flow,
      tags: fm.has('tags') ? c.strs(fm.get('tags'), `${at}.tags`) : [],
      entrypoints: fm.has('entrypoints') ? c.strs(fm.get('entrypoints'), `${at}.entrypoints`) : [],
    };
  });
  const flowIds = new Set<string>();
  for (const f of flows) {
    if (flowIds.has(f.id)) c.fail('flows', `flow '${f.id}' appears twice`);
    flowIds.add(f.id);
  }
  const components = c
    .arr(c.req(m, 'components', '(root)'), 'components')
    .map((x, i) => decodeComponent(c, x, `components[${i}]`));
  const compIds = new Set<string>();
  for (const x of components) {
    if (compIds.has(x.id)) c.fail('components', `component '${x.id}' appears twice`);
    compIds.add(x.id);
  }
  const sigs = c.map(c.req(m, 'signatures', '(root)'), 'signatures');
  const extensions: Record<string, PackV1ExtensionRef> = {};
  const ext = m.get('extensions');
  if (ext !== undefined && ext !== null) {
    for (const [k, x] of c.map(ext, 'extensions')) {
      const at = `extensions.${k}`;
      const em = c.map(x, at);
      const digest = c.optStr(em.get('digest'), `${at}.digest`);
      const location = c.optStr(em.get('location'), `${at}.location`);
      extensions[k] = {
        kind: c.str(c.req(em, 'kind', at), `${at}.kind`),
        version: c.str(c.req(em, 'version', at), `${at}.version`),
        ...(digest !== undefined ? { digest } : {}),
        ...(location !== undefined ? { location } : {}),
        ...(em.has('inline') ? { inline: c.json(em.get('inline'), `${at}.inline`) } : {}),
      };
    }
  }
  const agents: Record<string, JsonValue> = {};
  const ag = m.get('agents');
  if (ag !== undefined && ag !== null)
    for (const [k, x] of c.map(ag, 'agents')) agents[k] = c.json(x, `agents.${k}`);
  const name = c.optStr(m.get('name'), 'name');
  const bootstrap = m.get('bootstrap');
  return {
    schema_version: schema,
    pack_id: c.id(c.sym(c.req(m, 'pack_id', '(root)'), 'pack_ids', 'pack_id'), 'pack_id'),
    ...(name !== undefined ? { name } : {}),
    version,
    kind: kind as PackV1Kind,
    publisher: c.str(c.req(m, 'publisher', '(root)'), 'publisher'),
    components,
    flows,
    dependencies: c.arr(c.req(m, 'dependencies', '(root)'), 'dependencies').map((d, i) => {
      const at = `dependencies[${i}]`;
      const dm = c.map(d, at);
      return {
        alias: c.str(c.req(dm, 'alias', at), `${at}.alias`),
        pack_id: c.sym(c.req(dm, 'pack_id', at), 'pack_ids', `${at}.pack_id`),
        version_req: c.str(c.req(dm, 'version_req', at), `${at}.version_req`),
        required_capabilities: c
          .arr(dm.get('required_capabilities') ?? [], `${at}.required_capabilities`)
          .map((x, j) => c.sym(x, 'capability_names', `${at}.required_capabilities[${j}]`)),
      };
    }),
    capabilities: c.arr(c.req(m, 'capabilities', '(root)'), 'capabilities').map((x, i) => {
      const at = `capabilities[${i}]`;
      const xm = c.map(x, at);
      return {
        name: c.sym(c.req(xm, 'name', at), 'capability_names', `${at}.name`),
        description: c.optStr(xm.get('description'), `${at}.description`) ?? null,
      };
    }),
    secret_requirements: c
      .arr(m.get('secret_requirements') ?? [], 'secret_requirements')
      .map((x, i) => c.json(x, `secret_requirements[${i}]`)),
    signatures: c
      .arr(c.req(sigs, 'signatures', 'signatures'), 'signatures.signatures')
      .map((x, i) => decodeSignature(c, x, `signatures.signatures[${i}]`)),
    ...(bootstrap !== undefined && bootstrap !== null ? { bootstrap: c.json(bootstrap, 'bootstrap') } : {}),
    ...(Object.keys(extensions).length > 0 ? { extensions } : {}),
    ...(Object.keys(agents).length > 0 ? { agents } : {}),
    wire: { nodeErrMap: errMapSeen.any || !flows.some((f) => f.flow.nodes.length > 0) },
  };
}

// ------------------------------------------------------------------------------------------------- encode

function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function sortedSet(values: Iterable<string>): string[] {
  return [...new Set(values)].sort(compareBytewise);
}

/** A BTreeMap on the wire: keys sorted bytewise. */
function btree<T>(rec: Record<string, T>, f: (v: T) => WireValue): WireMap {
  return new Map(
    Object.keys(rec)
      .sort(compareBytewise)
      .map((k) => [k, f(rec[k]!)]),
  );
}

/** A Rust struct on the wire: fields in declaration order, `undefined` ones skipped. */
function struct(fields: [string, WireValue | undefined][]): WireMap {
  return new Map(fields.filter((f): f is [string, WireValue] => f[1] !== undefined));
}

/** The symbol tables upstream builds (`BTreeSet`s): every id the manifest refers to, sorted. */
export function symbolTables(
  m: PackV1Manifest,
): Record<'component_ids' | 'node_ids' | 'capability_names' | 'pack_ids', string[]> {
  return {
    component_ids: sortedSet([
      ...m.components.map((c) => c.id),
      ...m.flows.flatMap((f) => f.flow.nodes.map((n) => n.component.id)),
    ]),
    node_ids: sortedSet(m.flows.flatMap((f) => f.flow.nodes.map((n) => n.id))),
    capability_names: sortedSet([
      ...m.capabilities.map((c) => c.name),
      ...m.dependencies.flatMap((d) => d.required_capabilities),
    ]),
    pack_ids: sortedSet([m.pack_id, ...m.dependencies.map((d) => d.pack_id)]),
  };
}

/**
 * Encodes a manifest in upstream's wire form (greentic-types `encode_pack_manifest`): Encoded* structs in
 * declaration order, ids as indexes into `symbols`, `Option::None` written as null where upstream does,
 * embedded JSON with sorted keys, no tag. `emptySignatures` gives the bytes pack-v1 signatures cover.
 */
export function encodeManifestV1(m: PackV1Manifest, opts: { emptySignatures?: boolean } = {}): Uint8Array {
  const sym = symbolTables(m);
  const index = (table: keyof typeof sym, name: string): number => {
    const i = sym[table].indexOf(name);
    if (i < 0) throw new Error(`internal: '${name}' missing from symbols.${table}`);
    return i;
  };
  const json = (v: JsonValue | undefined): WireValue => jsonToWire(v ?? null);
  const ordered = (v: JsonValue | undefined): WireValue => jsonToWire(v ?? null, true);
  const errMap = m.wire?.nodeErrMap ?? true;
  const routing = (r: FlowV1Routing): WireValue => {
    switch (r.kind) {
      case 'next':
        return new Map([['Next', new Map([['node_id', index('node_ids', r.nodeId)]])]]);
      case 'branch':
        return new Map([
          [
            'Branch',
            struct([
              ['on_status', btree(r.onStatus, (n) => index('node_ids', n))],
              ['default', r.default !== undefined ? index('node_ids', r.default) : null],
            ]),
          ],
        ]);
      case 'end':
        return 'End';
      case 'reply':
        return 'Reply';
      case 'custom':
        return new Map([['Custom', json(r.value)]]);
    }
  };
  const node = (n: FlowV1Node): WireValue =>
    struct([
      ['id', index('node_ids', n.id)],
      [
        'component',
        struct([
          ['id', index('component_ids', n.component.id)],
          ['pack_alias', n.component.pack_alias ?? null],
          ['operation', n.component.operation ?? null],
        ]),
      ],
      ['input', struct([['mapping', json(n.input.mapping)]])],
      ['output', struct([['mapping', json(n.output.mapping)]])],
      ['err_map', errMap ? (n.err_map ? struct([['mapping', json(n.err_map.mapping)]]) : null) : undefined],
      ['routing', routing(n.routing)],
      [
        'telemetry',
        struct([
          ['span_name', n.telemetry.span_name],
          ['attributes', btree(n.telemetry.attributes, (s) => s)],
          ['sampling', n.telemetry.sampling],
        ]),
      ],
    ]);
  const flow = (f: FlowV1): WireValue =>
    struct([
      ['schema_version', f.schema_version],
      ['id', f.id],
      ['kind', f.kind],
      ['entrypoints', btree(f.entrypoints, json)],
      ['nodes', f.nodes.map(node)],
      [
        'metadata',
        struct([
          ['title', f.metadata.title],
          ['description', f.metadata.description],
          ['tags', sortedSet(f.metadata.tags)],
          ['extra', json(f.metadata.extra)],
        ]),
      ],
    ]);
  const component = (c: PackV1Component): WireValue =>
    struct([
      ['id', index('component_ids', c.id)],
      ['version', c.version],
      ['supports', c.supports],
      ['world', c.world],
      ['profiles', ordered(c.profiles)],
      ['capabilities', ordered(c.capabilities)],
      ['configurators', ordered(c.configurators)],
      [
        'operations',
        c.operations.map((o) =>
          struct([
            ['name', o.name],
            ['input_schema', json(o.input_schema)],
            ['output_schema', json(o.output_schema)],
          ]),
        ),
      ],
      ['config_schema', json(c.config_schema)],
      ['resources', ordered(c.resources)],
      ['dev_flows', btree(c.dev_flows, ordered)],
    ]);
  const signatures = opts.emptySignatures ? [] : m.signatures;
  const exts = m.extensions && Object.keys(m.extensions).length > 0 ? m.extensions : undefined;
  const root = struct([
    ['schema_version', m.schema_version],
    ['pack_id', index('pack_ids', m.pack_id)],
    ['name', m.name],
    ['version', m.version],
    ['kind', m.kind],
    ['publisher', m.publisher],
    [
      'symbols',
      struct([
        ['component_ids', sym.component_ids],
        ['node_ids', sym.node_ids],
        ['capability_names', sym.capability_names],
        ['pack_ids', sym.pack_ids],
      ]),
    ],
    ['components', m.components.map(component)],
    [
      'flows',
      m.flows.map((e) =>
        struct([
          ['id', e.id],
          ['kind', e.kind],
          ['flow', flow(e.flow)],
          ['tags', e.tags],
          ['entrypoints', e.entrypoints],
        ]),
      ),
    ],
    [
      'dependencies',
      m.dependencies.map((d) =>
        struct([
          ['alias', d.alias],
          ['pack_id', index('pack_ids', d.pack_id)],
          ['version_req', d.version_req],
          ['required_capabilities', d.required_capabilities.map((x) => index('capability_names', x))],
        ]),
      ),
    ],
    [
      'capabilities',
      m.capabilities.map((x) =>
        struct([
          ['name', index('capability_names', x.name)],
          ['description', x.description],
        ]),
      ),
    ],
    [
      'secret_requirements',
      m.secret_requirements.length > 0 ? m.secret_requirements.map(ordered) : undefined,
    ],
    [
      'signatures',
      struct([
        [
          'signatures',
          signatures.map((s) =>
            struct([
              ['key_id', s.key_id],
              ['algorithm', s.algorithm === 'ed25519' ? 'ed25519' : new Map([['other', s.algorithm]])],
              ['signature', s.signature],
            ]),
          ),
        ],
      ]),
    ],
    ['bootstrap', m.bootstrap !== undefined && m.bootstrap !== null ? ordered(m.bootstrap) : undefined],
    [
      'extensions',
      exts
        ? btree(exts, (e) =>
            struct([
              ['kind', e.kind],
              ['version', e.version],
              ['digest', e.digest],
              ['location', e.location],
              ['inline', e.inline !== undefined ? json(e.inline) : undefined],
            ]),
          )
        : undefined,
    ],
    ['agents', m.agents && Object.keys(m.agents).length > 0 ? btree(m.agents, json) : undefined],
  ]);
  return encodeWire(root);
}
