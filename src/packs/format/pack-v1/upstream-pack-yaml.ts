import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { LineCounter, isMap, isNode, parseDocument, type Document } from 'yaml';
import type { FlowIssue } from '../../../flows/flow.types.js';
import { sha256Hex } from '../hash.js';
import type { PackV1Kind } from './manifest-v1.js';

/**
 * Upstream's `pack.yaml` source layout (packc `crates/packc/src/config.rs`): `pack_id`, `version`, `kind`,
 * `publisher`, `components: [{id, version, world, wasm, …}]`, `flows: [{id, file, tags, entrypoints}]`,
 * `assets: [{path}]`. Read here with every problem as a `file:line:col` issue, so `greentic-pack build` and
 * `greentic-flow validate` report the same thing at the same place.
 */

export interface Pos {
  line: number;
  column: number;
}

export interface UpstreamComponentRef {
  id: string;
  version: string;
  world: string;
  /** `wasm` as written (a file, or a directory holding exactly one `*.component.wasm`, else `*.wasm`). */
  wasm: string;
  /** The wasm file it resolves to; absent when it does not exist (not built yet). */
  wasmFile?: string;
  /** The rest of the entry (supports, profiles, capabilities, operations, …) as written. */
  raw: Record<string, unknown>;
  pos: Pos;
}

export interface UpstreamFlowRef {
  /** `flows[].id`; packc overwrites it with the compiled flow's id. */
  id?: string;
  file: string;
  abs: string;
  tags: string[];
  entrypoints: string[];
  pos: Pos;
}

export interface UpstreamPackYaml {
  dir: string;
  file: string;
  packId: string;
  version: string;
  kind: PackV1Kind;
  publisher: string;
  name?: string;
  components: UpstreamComponentRef[];
  flows: UpstreamFlowRef[];
  assets: { path: string; pos: Pos }[];
  issues: FlowIssue[];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Upstream's layout names the pack `pack_id` and its flows by `file`; this runner's own layout says `id`
 * and lists flows as paths (or `{path}`) and components by `name`/`path`.
 */
export function isUpstreamPackYaml(raw: unknown): boolean {
  if (!isRecord(raw)) return false;
  if (typeof raw['pack_id'] === 'string') return true;
  const flows = Array.isArray(raw['flows']) ? raw['flows'] : [];
  const comps = Array.isArray(raw['components']) ? raw['components'] : [];
  return (
    flows.some((f) => isRecord(f) && typeof f['file'] === 'string') ||
    comps.some((c) => isRecord(c) && typeof c['wasm'] === 'string')
  );
}

/** Where a YAML path sits in its document (1-based), or the document start. */
export function posIn(doc: Document, lc: LineCounter, at: readonly (string | number)[], key = false): Pos {
  let node: unknown = doc.contents;
  let keyNode: unknown;
  for (const seg of at) {
    if (!isNode(node) || !('items' in node)) break;
    const items = (node as { items: unknown[] }).items;
    if (isMap(node)) {
      const pair = node.items.find((p) => isNode(p.key) && (p.key as { value?: unknown }).value === seg);
      if (!pair) break;
      keyNode = pair.key;
      node = pair.value;
    } else if (typeof seg === 'number') {
      keyNode = undefined;
      node = items[seg];
    } else break;
  }
  const target = key && keyNode !== undefined ? keyNode : node;
  const offset = isNode(target) && target.range ? target.range[0] : 0;
  const p = lc.linePos(offset);
  return { line: p.line, column: p.col };
}

function issue(
  file: string,
  pos: Pos,
  code: string,
  message: string,
  severity: FlowIssue['severity'] = 'error',
): FlowIssue {
  return { severity, code, message, file, line: pos.line, column: pos.column };
}

/** `path` under `dir`, never above it and never absolute (packc `normalize_under_root`). */
export function underRoot(dir: string, rel: string): string | undefined {
  if (path.isAbsolute(rel) || rel.includes('\\')) return undefined;
  const abs = path.resolve(dir, rel);
  return abs === dir || abs.startsWith(dir + path.sep) ? abs : undefined;
}

/** A component's `wasm`: the file itself, or the one `*.component.wasm` (else `*.wasm`) in a directory. */
export async function resolveWasm(abs: string): Promise<string | undefined> {
  const st = await stat(abs).catch(() => undefined);
  if (!st) return undefined;
  if (st.isFile()) return abs;
  if (!st.isDirectory()) return undefined;
  const names = (await readdir(abs)).sort();
  const comp = names.filter((n) => n.endsWith('.component.wasm'));
  const pick = comp.length > 0 ? comp : names.filter((n) => n.endsWith('.wasm'));
  return pick.length === 1 ? path.join(abs, pick[0]!) : undefined;
}

const KINDS = new Set(['application', 'provider', 'infrastructure', 'library']);

/** Reads an upstream `pack.yaml` (already known to be that layout). */
export async function readUpstreamPackYaml(
  dir: string,
  file: string,
  text: string,
): Promise<UpstreamPackYaml> {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const issues: FlowIssue[] = [];
  const raw = (doc.errors.length === 0 ? doc.toJS() : {}) as Record<string, unknown>;
  for (const e of doc.errors) {
    const p = lc.linePos(e.pos[0]);
    issues.push(
      issue(file, { line: p.line, column: p.col }, 'pack_manifest_invalid', e.message.split('\n')[0]!),
    );
  }
  const at = (p: readonly (string | number)[], key = false): Pos => posIn(doc, lc, p, key);
  const str = (v: unknown, where: readonly (string | number)[], what: string): string => {
    if (typeof v === 'string' || typeof v === 'number') return String(v);
    if (doc.errors.length === 0)
      issues.push(issue(file, at(where), 'pack_manifest_invalid', `'${what}' is required (a string)`));
    return '';
  };
  const packId = str(raw['pack_id'], ['pack_id'], 'pack_id');
  if (packId !== '' && !/^[A-Za-z0-9._-]+$/.test(packId))
    issues.push(
      issue(
        file,
        at(['pack_id']),
        'pack_manifest_invalid',
        `pack_id '${packId}' may hold only ASCII letters, digits, '.', '_' and '-'`,
      ),
    );
  const version = str(raw['version'], ['version'], 'version');
  if (version !== '' && !/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/.test(version))
    issues.push(issue(file, at(['version']), 'pack_manifest_invalid', `version '${version}' is not semver`));
  const kind = typeof raw['kind'] === 'string' ? raw['kind'].toLowerCase() : 'application';
  if (!KINDS.has(kind))
    issues.push(
      issue(
        file,
        at(['kind']),
        'pack_manifest_invalid',
        `kind '${kind}' is not one of ${[...KINDS].join(', ')}`,
      ),
    );

  const components: UpstreamComponentRef[] = [];
  const rawComps = Array.isArray(raw['components']) ? raw['components'] : [];
  for (const [i, c] of rawComps.entries()) {
    const where = ['components', i];
    if (!isRecord(c)) {
      issues.push(issue(file, at(where), 'pack_manifest_invalid', `components[${i}] must be a mapping`));
      continue;
    }
    const id = str(c['id'], [...where, 'id'], `components[${i}].id`);
    const wasm = str(c['wasm'], [...where, 'wasm'], `components[${i}].wasm`);
    if (id === '' || wasm === '') continue;
    if (components.some((x) => x.id === id)) {
      issues.push(
        issue(file, at([...where, 'id']), 'pack_component_duplicate', `component '${id}' is listed twice`),
      );
      continue;
    }
    const abs = underRoot(dir, wasm);
    if (!abs) {
      issues.push(
        issue(
          file,
          at([...where, 'wasm']),
          'pack_path_invalid',
          `components[${i}].wasm '${wasm}' leaves the pack directory`,
        ),
      );
      continue;
    }
    const wasmFile = await resolveWasm(abs);
    components.push({
      id,
      version: typeof c['version'] === 'string' ? c['version'] : version,
      world: typeof c['world'] === 'string' ? c['world'] : 'greentic:component/component@0.6.0',
      wasm,
      ...(wasmFile ? { wasmFile } : {}),
      raw: c,
      pos: at(where),
    });
  }

  const flows: UpstreamFlowRef[] = [];
  const rawFlows = Array.isArray(raw['flows']) ? raw['flows'] : [];
  for (const [i, f] of rawFlows.entries()) {
    const where = ['flows', i];
    const rel = isRecord(f) ? str(f['file'], [...where, 'file'], `flows[${i}].file`) : '';
    if (!isRecord(f))
      issues.push(
        issue(file, at(where), 'pack_manifest_invalid', `flows[${i}] must be a mapping with 'file'`),
      );
    if (rel === '' || !isRecord(f)) continue;
    const abs = underRoot(dir, rel);
    if (!abs) {
      issues.push(
        issue(
          file,
          at([...where, 'file']),
          'pack_path_invalid',
          `flows[${i}].file '${rel}' leaves the pack directory`,
        ),
      );
      continue;
    }
    const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);
    flows.push({
      ...(typeof f['id'] === 'string' ? { id: f['id'] } : {}),
      file: rel,
      abs,
      tags: strings(f['tags']),
      entrypoints: strings(f['entrypoints']),
      pos: at([...where, 'file']),
    });
  }

  const assets: { path: string; pos: Pos }[] = [];
  const rawAssets = Array.isArray(raw['assets']) ? raw['assets'] : [];
  for (const [i, a] of rawAssets.entries()) {
    const p = isRecord(a) ? a['path'] : a;
    if (typeof p !== 'string') {
      issues.push(issue(file, at(['assets', i]), 'pack_manifest_invalid', `assets[${i}] needs 'path'`));
      continue;
    }
    assets.push({ path: p, pos: at(['assets', i]) });
  }

  return {
    dir,
    file,
    packId,
    version,
    kind: kind as PackV1Kind,
    publisher: typeof raw['publisher'] === 'string' ? raw['publisher'] : '',
    ...(typeof raw['name'] === 'string' ? { name: raw['name'] } : {}),
    components,
    flows,
    assets,
    issues,
  };
}

/** One node binding of a `.ygtc.resolve.json` sidecar (greentic-types `flow_resolve.rs`). */
export interface SidecarBinding {
  node: string;
  kind: 'local' | 'oci' | 'repo' | 'store' | 'ext';
  /** `local`: the path as written (relative to the flow's directory); else the ref. */
  ref: string;
  digest?: string;
  pos: Pos;
}

export interface Sidecar {
  file: string;
  bindings: SidecarBinding[];
  issues: FlowIssue[];
}

const SOURCE_KINDS = new Set(['local', 'oci', 'repo', 'store', 'ext']);
const DIGEST = /^sha256:[0-9a-fA-F]+$/;

/** Reads `<flow>.resolve.json` next to the flow, if there is one. */
export async function readSidecar(flowAbs: string): Promise<Sidecar | undefined> {
  const file = `${flowAbs}.resolve.json`;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  // JSON is YAML: the YAML parser gives every key its line and column.
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const issues: FlowIssue[] = [];
  const bindings: SidecarBinding[] = [];
  if (doc.errors.length > 0) {
    const p = lc.linePos(doc.errors[0]!.pos[0]);
    issues.push(
      issue(file, { line: p.line, column: p.col }, 'sidecar_invalid', doc.errors[0]!.message.split('\n')[0]!),
    );
    return { file, bindings, issues };
  }
  const raw = doc.toJS() as unknown;
  const at = (p: readonly (string | number)[], key = false): Pos => posIn(doc, lc, p, key);
  if (!isRecord(raw))
    return { file, bindings, issues: [issue(file, at([]), 'sidecar_invalid', 'must be a JSON object')] };
  if (raw['schema_version'] !== 1)
    issues.push(
      issue(
        file,
        at(['schema_version']),
        'sidecar_invalid',
        `schema_version must be 1 (is ${JSON.stringify(raw['schema_version'] ?? null)})`,
      ),
    );
  const nodes = isRecord(raw['nodes']) ? raw['nodes'] : {};
  for (const [node, b] of Object.entries(nodes)) {
    const where = ['nodes', node];
    const src = isRecord(b) ? b['source'] : undefined;
    const kind = isRecord(src) ? src['kind'] : undefined;
    if (!isRecord(src) || typeof kind !== 'string' || !SOURCE_KINDS.has(kind)) {
      issues.push(
        issue(
          file,
          at(where, true),
          'sidecar_invalid',
          `node '${node}': source.kind must be one of ${[...SOURCE_KINDS].join(', ')}`,
        ),
      );
      continue;
    }
    const ref = kind === 'local' ? src['path'] : src['ref'];
    if (typeof ref !== 'string' || ref === '') {
      issues.push(
        issue(
          file,
          at([...where, 'source'], true),
          'sidecar_invalid',
          `node '${node}': source.${kind === 'local' ? 'path' : 'ref'} is required`,
        ),
      );
      continue;
    }
    if (kind === 'local' && path.isAbsolute(ref)) {
      issues.push(
        issue(
          file,
          at([...where, 'source', 'path']),
          'sidecar_invalid',
          `node '${node}': a local path must be relative (is '${ref}')`,
        ),
      );
      continue;
    }
    const digest = src['digest'];
    if (digest !== undefined && (typeof digest !== 'string' || !DIGEST.test(digest))) {
      issues.push(
        issue(
          file,
          at([...where, 'source', 'digest']),
          'sidecar_invalid',
          `node '${node}': digest must be sha256:<hex>`,
        ),
      );
      continue;
    }
    bindings.push({
      node,
      kind: kind as SidecarBinding['kind'],
      ref,
      ...(typeof digest === 'string' ? { digest } : {}),
      pos: at(where, true),
    });
  }
  return { file, bindings, issues };
}

/** The pack component a `local` binding points at (same wasm file, or its directory), if any. */
export function componentOfLocal(
  binding: SidecarBinding,
  flowAbs: string,
  components: readonly UpstreamComponentRef[],
  dir: string,
): UpstreamComponentRef | undefined {
  const target = path.resolve(path.dirname(flowAbs), binding.ref);
  return components.find(
    (c) => (c.wasmFile !== undefined && c.wasmFile === target) || path.resolve(dir, c.wasm) === target,
  );
}

/** `sha256:<hex>` of a file's bytes, for comparing with a sidecar's pinned digest. */
export async function fileDigest(file: string): Promise<string> {
  return `sha256:${sha256Hex(await readFile(file))}`;
}

/**
 * The directory's `pack.yaml` (or `pack.yml`) when it is in upstream's layout; undefined for this runner's
 * own layout, an unparsable file (its own reader reports that) or a directory without one.
 */
export async function openUpstreamPackDir(dirArg: string): Promise<UpstreamPackYaml | undefined> {
  const dir = path.resolve(dirArg);
  for (const name of ['pack.yaml', 'pack.yml']) {
    const file = path.join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue;
    }
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0 || !isUpstreamPackYaml(doc.toJS())) return undefined;
    return readUpstreamPackYaml(dir, file, text);
  }
  return undefined;
}
