import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import { FlowValidationError, PackError } from '../../common/errors.js';
import { checkFlow, validateFlowCalls } from '../../flows/flow-validator.js';
import { formatIssue, type FlowDefinition, type FlowIssue } from '../../flows/flow.types.js';
import {
  WORLD_V01,
  WORLD_V06,
  type ComponentSpec,
  type PreparedComponent,
} from '../../core/component-runtime.js';
import { PACK_FORMAT_VERSION } from './constants.js';
import { blake3Hex } from './hash.js';
import type { Ed25519KeyPair } from './keys.js';
import type { ComponentEntry, FlowEntry, PackManifest } from './manifest.js';
import { assemblePack } from './pack-writer.js';
import type { PackFile } from './zip-writer.js';

export interface BuildOptions {
  key?: Ed25519KeyPair;
  /** RFC 3339 build time; default SOURCE_DATE_EPOCH, else the format's fixed 1980-01-01 epoch. */
  createdAt?: string;
  signedAt?: string;
  progress?: (line: string) => void;
  /**
   * Reads a component's world and declared operations (the runner's component runtime). When
   * given, the manifest records both and every flow's operations are checked against them, so a
   * typo fails the build instead of the runner's load; without it only component names are checked.
   */
  describe?: (spec: ComponentSpec) => Promise<PreparedComponent>;
}

export interface BuildResult {
  bytes: Buffer;
  manifest: PackManifest;
  files: PackFile[];
  warnings: string[];
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const VERSION = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/;

/** Build time for reproducible builds: SOURCE_DATE_EPOCH when set, else the format's fixed epoch. */
export function reproducibleTime(): string {
  const epoch = process.env['SOURCE_DATE_EPOCH'];
  if (epoch && /^\d+$/.test(epoch)) return new Date(Number(epoch) * 1000).toISOString().replace('.000Z', 'Z');
  return '1980-01-01T00:00:00Z';
}

/** Signing time: SOURCE_DATE_EPOCH when set (reproducible signed builds), else now. */
export function signingTime(): string {
  return process.env['SOURCE_DATE_EPOCH'] ? reproducibleTime() : new Date().toISOString();
}

interface RawPackYaml {
  id?: unknown;
  version?: unknown;
  name?: unknown;
  description?: unknown;
  authors?: unknown;
  entry_flows?: unknown;
  flows?: unknown;
  components?: unknown;
  assets?: unknown;
}

/** Reads a path the pack lists, refusing anything outside the pack directory. */
async function readInside(dir: string, rel: string, file: string, what: string): Promise<Buffer> {
  const abs = path.resolve(dir, rel);
  if (path.isAbsolute(rel) || rel.includes('\\') || !abs.startsWith(dir + path.sep)) {
    throw new PackError('pack_path_invalid', `${file}: ${what} '${rel}' leaves the pack directory`);
  }
  try {
    return await readFile(abs);
  } catch (e) {
    throw new PackError('pack_file_missing', `${file}: ${what} '${rel}': ${(e as Error).message}`);
  }
}

/** pack.yaml may name a world short (`0.6`) or in full (`greentic:component@0.6.0`). */
function worldOf(v: unknown): string | null {
  if (typeof v !== 'string' && typeof v !== 'number') return null;
  const s = String(v);
  return s === '0.1' ? WORLD_V01 : s === '0.6' ? WORLD_V06 : s;
}

async function describeComponent(
  describe: NonNullable<BuildOptions['describe']>,
  spec: ComponentSpec,
  rel: string,
  declaredWorld: string | null,
  file: string,
): Promise<PreparedComponent> {
  let pc: PreparedComponent;
  try {
    pc = await describe(spec);
  } catch (e) {
    throw new PackError(
      'pack_component_invalid',
      `${file}: component '${spec.name}' (${rel}) cannot be loaded: ${(e as Error).message}`,
      { component: spec.name },
    );
  }
  if (declaredWorld !== null && declaredWorld !== pc.world) {
    throw new PackError(
      'pack_component_world_mismatch',
      `${file}: component '${spec.name}' is declared as ${declaredWorld} but implements ${pc.world}`,
      { component: spec.name },
    );
  }
  return pc;
}

/** `pack.yaml:line:col` of a key path such as `components[2].name` (or of the nearest part that exists). */
type Locate = (what: string) => string;

function locator(doc: Document, lc: LineCounter, file: string): Locate {
  return (what) => {
    const keys = what.split(/\.|\[(\d+)\]/).filter((k) => k !== undefined && k !== '');
    const path = keys.map((k) => (/^\d+$/.test(k) ? Number(k) : k));
    for (let n = path.length; n > 0; n--) {
      const parent = n === 1 ? doc.contents : doc.getIn(path.slice(0, n - 1), true);
      if (!isMap(parent) && !isSeq(parent)) continue;
      // The value when there is one, else the key, else the collection that lacks it.
      const node = (parent as { get(k: unknown, keep: true): unknown }).get(path[n - 1], true) as
        { range?: [number, number, number] } | undefined;
      const offset = node?.range?.[0];
      if (offset !== undefined) {
        const p = lc.linePos(offset);
        return `${file}:${p.line}:${p.col}`;
      }
    }
    const top = (doc.contents as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
    const p = lc.linePos(top);
    return `${file}:${p.line}:${p.col}`;
  };
}

function list(v: unknown, what: string, at: Locate): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v))
    throw new PackError('pack_manifest_invalid', `${at(what)}: '${what}' must be a list`);
  return v;
}

function reqString(v: unknown, what: string, at: Locate, pattern?: RegExp): string {
  if (typeof v !== 'string' && typeof v !== 'number')
    throw new PackError('pack_manifest_invalid', `${at(what)}: '${what}' is required (a string)`);
  const s = String(v);
  if (pattern && !pattern.test(s))
    throw new PackError(
      'pack_manifest_invalid',
      `${at(what)}: '${what}' = '${s}' does not match ${pattern.source}`,
    );
  return s;
}

/**
 * Builds a `.gtpack` from a pack directory (`pack.yaml`: id, version, flows, components,
 * assets). Every flow is validated against the pack's components before anything is written,
 * and the result is byte-for-byte reproducible.
 */
export async function buildPackFromDir(dirArg: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const dir = path.resolve(dirArg);
  const progress = opts.progress ?? (() => undefined);
  let file = path.join(dir, 'pack.yaml');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    file = path.join(dir, 'pack.yml');
    text = await readFile(file, 'utf8').catch(() => {
      throw new PackError('pack_not_found', `${dir}: no pack.yaml`);
    });
  }
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const p = lc.linePos(e.pos[0]);
    throw new PackError('pack_manifest_invalid', `${file}:${p.line}:${p.col}: ${e.message.split('\n')[0]}`);
  }
  const at = locator(doc, lc, file);
  const raw = doc.toJS() as RawPackYaml | null;
  if (!raw || typeof raw !== 'object')
    throw new PackError('pack_manifest_invalid', `${at('')}: expected a mapping`);
  const id = reqString(raw.id, 'id', at, ID);
  const version = reqString(raw.version ?? '0.1.0', 'version', at, VERSION);

  const files: PackFile[] = [];
  const components: ComponentEntry[] = [];
  const described = new Map<string, PreparedComponent>();
  const rawComponents = list(raw.components, 'components', at);
  progress(`reading ${rawComponents.length} component(s)`);
  for (const [i, c] of rawComponents.entries()) {
    const o = (c ?? {}) as Record<string, unknown>;
    const name = reqString(o['name'], `components[${i}].name`, at, ID);
    const cver = reqString(o['version'] ?? version, `components[${i}].version`, at, VERSION);
    const rel = reqString(o['path'], `components[${i}].path`, at);
    if (components.some((x) => x.name === name))
      throw new PackError('pack_component_duplicate', `${file}: component '${name}' listed twice`);
    const wasm = await readInside(dir, rel, at(`components[${i}].path`), `components[${i}].path`);
    const base = `components/${name}@${cver}`;
    files.push({ path: `${base}/component.wasm`, bytes: wasm });
    let manifestFile: string | null = null;
    if (typeof o['manifest'] === 'string') {
      const m = await readInside(dir, o['manifest'], file, `components[${i}].manifest`);
      manifestFile = `${base}/manifest.json`;
      files.push({ path: manifestFile, bytes: m });
    }
    const declaredWorld = worldOf(o['world']);
    const pc = opts.describe
      ? await describeComponent(opts.describe, { name, version: cver, bytes: wasm }, rel, declaredWorld, file)
      : undefined;
    if (pc) described.set(name, pc);
    components.push({
      name,
      version: cver,
      file_wasm: `${base}/component.wasm`,
      hash_blake3: blake3Hex(wasm),
      schema_file: null,
      manifest_file: manifestFile,
      world: pc?.world ?? declaredWorld,
      capabilities: null,
      operations: pc ? pc.operations.map((op) => op.name) : null,
    });
  }

  const rawFlows = list(raw.flows, 'flows', at);
  progress(`validating ${rawFlows.length} flow(s)`);
  // Described components let the validator check operations too, as the runner does at load.
  const known = opts.describe ? described : new Set(components.map((c) => c.name));
  const flows: FlowEntry[] = [];
  const parsed: FlowDefinition[] = [];
  const issues: FlowIssue[] = [];
  const warnings: string[] = [];
  for (const [i, f] of rawFlows.entries()) {
    const rel =
      typeof f === 'string' ? f : reqString((f as { path?: unknown } | null)?.path, `flows[${i}].path`, at);
    const abs = path.resolve(dir, rel);
    const src = (await readInside(dir, rel, file, `flows[${i}]`)).toString('utf8').replace(/\r\n/g, '\n');
    const checked = checkFlow(src, abs, { components: known });
    issues.push(...checked.issues.filter((x) => x.severity === 'error'));
    warnings.push(...checked.issues.filter((x) => x.severity === 'warning').map(formatIssue));
    if (!checked.flow) continue;
    const flow = checked.flow;
    parsed.push(flow);
    const declared = typeof f === 'object' && f ? (f as { id?: unknown }).id : undefined;
    if (typeof declared === 'string' && declared !== flow.id) {
      issues.push({
        severity: 'error',
        code: 'flow_id_mismatch',
        message: `flow id '${flow.id}' does not match pack.yaml's '${declared}'`,
        file: abs,
        line: 1,
        column: 1,
      });
      continue;
    }
    if (!ID.test(flow.id)) {
      issues.push({
        severity: 'error',
        code: 'flow_id_invalid',
        message: `flow id '${flow.id}' cannot name a pack path`,
        file: abs,
        line: 1,
        column: 1,
      });
      continue;
    }
    if (flows.some((x) => x.id === flow.id)) {
      issues.push({
        severity: 'error',
        code: 'flow_duplicate',
        message: `flow '${flow.id}' defined twice in the pack`,
        file: abs,
        line: 1,
        column: 1,
      });
      continue;
    }
    const yamlBytes = new TextEncoder().encode(src);
    const jsonBytes = new TextEncoder().encode(JSON.stringify(flow.raw));
    const base = `flows/${flow.id}`;
    files.push(
      { path: `${base}/flow.ygtc`, bytes: yamlBytes },
      { path: `${base}/flow.json`, bytes: jsonBytes },
    );
    flows.push({
      id: flow.id,
      kind: flow.type,
      entry: flow.start,
      file_yaml: `${base}/flow.ygtc`,
      file_json: `${base}/flow.json`,
      hash_blake3: blake3Hex(yamlBytes),
    });
  }
  // Pack-level: `flow.call` targets exist among these flows, and calls never cycle.
  issues.push(...validateFlowCalls(parsed).filter((x) => x.severity === 'error'));
  if (issues.length > 0) {
    throw new FlowValidationError(
      `${file}: ${issues.length} flow error(s), nothing written:\n  ${issues.map(formatIssue).join('\n  ')}`,
      issues,
    );
  }
  if (flows.length === 0)
    throw new PackError('pack_manifest_invalid', `${file}: a pack needs at least one flow`);

  for (const [i, a] of list(raw.assets, 'assets', at).entries()) {
    const rel = reqString(a, `assets[${i}]`, at);
    const bytes = await readInside(dir, rel, file, `assets[${i}]`);
    const inPack = rel.replace(/^\.\//, '').startsWith('assets/')
      ? rel.replace(/^\.\//, '')
      : `assets/${rel.replace(/^\.\//, '')}`;
    files.push({ path: inPack, bytes });
  }

  const entryFlows =
    raw.entry_flows === undefined
      ? flows.map((f) => f.id)
      : list(raw.entry_flows, 'entry_flows', at).map(String);
  for (const e of entryFlows) {
    if (!flows.some((f) => f.id === e))
      throw new PackError(
        'pack_manifest_invalid',
        `${file}: entry flow '${e}' is not one of the pack's flows`,
      );
  }
  const manifest: PackManifest = {
    meta: {
      packVersion: PACK_FORMAT_VERSION,
      pack_id: id,
      version,
      name: typeof raw.name === 'string' ? raw.name : id,
      description: typeof raw.description === 'string' ? raw.description : null,
      authors: list(raw.authors, 'authors', at).map(String),
      entry_flows: entryFlows,
      created_at_utc: opts.createdAt ?? reproducibleTime(),
      annotations: {},
    },
    flows: flows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    components: components.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  };
  progress(`writing ${files.length} payload file(s) + manifest, SBOM${opts.key ? ', signature' : ''}`);
  const packed = await assemblePack({
    manifest,
    files,
    key: opts.key,
    signedAt: opts.signedAt ?? signingTime(),
  });
  return { bytes: packed.bytes, manifest, files: packed.files, warnings };
}
