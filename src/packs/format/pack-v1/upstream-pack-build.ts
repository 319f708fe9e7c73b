import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { FlowValidationError } from '../../../common/errors.js';
import { formatIssue, type FlowIssue } from '../../../flows/flow.types.js';
import type { PreparedComponent } from '../../../core/component-runtime.js';
import { sha256Hex } from '../hash.js';
import type { PackFile } from '../zip-writer.js';
import type { FlowV1Entry, JsonValue } from '../../../flows/flow-v1.js';
import type { PackV1Component } from './manifest-v1.js';
import {
  assemblePackV1,
  buildPackLock,
  composeManifestV1,
  type BuildV1Options,
  type BuildV1Result,
} from './pack-v1-writer.js';
import { PACK_LOCK_CBOR } from './sbom-v1.js';
import { checkFlowCalls, compileUpstreamFlow } from './upstream-flow.js';
import { underRoot, type UpstreamPackYaml } from './upstream-pack-yaml.js';

/**
 * `greentic-pack build` of a directory in upstream's `pack.yaml` layout (packc `build`, digest §8), offline:
 * components come from their local `wasm` files (`components/<id>.wasm`), each flow is compiled to flow-v1
 * with its `.ygtc.resolve.json` applied, assets follow packc's mapping, and the archive is pack-v1 with
 * `pack.lock.cbor` and `sbom.cbor` (signed the pack-v1 way when a key is given).
 */

/** Top-level directories packc never copies as extra dirs. */
const EXCLUDED_DIRS = new Set(['components', 'flows', 'dist', 'target', 'node_modules', 'assets']);
/** Root files packc never copies (`*.ygtc` too). */
const RESERVED_ROOT = new Set([
  'pack.yaml',
  'pack.manifest.json',
  'manifest.json',
  'manifest.cbor',
  'sbom.json',
  'sbom.cbor',
  'provenance.json',
  'secret-requirements.json',
  'secrets_requirements.json',
  'pack.lock.cbor',
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function json(v: unknown, fallback: JsonValue): JsonValue {
  return v === undefined ? fallback : (JSON.parse(JSON.stringify(v)) as JsonValue);
}

async function walk(abs: string, rel: string, out: PackFile[]): Promise<void> {
  const entries = await readdir(abs, { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue;
    const p = path.join(abs, e.name);
    if (e.isDirectory()) await walk(p, `${rel}/${e.name}`, out);
    else if (e.isFile()) out.push({ path: `${rel}/${e.name}`, bytes: new Uint8Array(await readFile(p)) });
  }
}

/**
 * packc's asset rules: the source `assets/` directory as it is; each `assets:` entry of pack.yaml at
 * `assets/<its path>` (so `assets/x.json` is also at `assets/assets/x.json`, as in upstream's packs);
 * other top-level directories as they are; other root files at `assets/<name>`.
 */
async function collectAssets(pack: UpstreamPackYaml, issues: FlowIssue[]): Promise<PackFile[]> {
  const out: PackFile[] = [];
  const entries = await readdir(pack.dir, { withFileTypes: true });
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (e.name.startsWith('.')) continue;
    const abs = path.join(pack.dir, e.name);
    if (e.isDirectory()) {
      if (e.name === 'assets' || !EXCLUDED_DIRS.has(e.name)) await walk(abs, e.name, out);
    } else if (e.isFile() && !RESERVED_ROOT.has(e.name) && !e.name.endsWith('.ygtc')) {
      out.push({ path: `assets/${e.name}`, bytes: new Uint8Array(await readFile(abs)) });
    }
  }
  for (const a of pack.assets) {
    const abs = underRoot(pack.dir, a.path);
    const issue = (code: string, message: string): void => {
      issues.push({ severity: 'error', code, message, file: pack.file, ...a.pos });
    };
    if (!abs) {
      issue('pack_path_invalid', `asset '${a.path}' leaves the pack directory`);
      continue;
    }
    try {
      const rel = path.relative(pack.dir, abs).split(path.sep).join('/');
      out.push({ path: `assets/${rel}`, bytes: new Uint8Array(await readFile(abs)) });
    } catch (e) {
      issue('pack_file_missing', `asset '${a.path}': ${(e as Error).message}`);
    }
  }
  const seen = new Set<string>();
  return out.filter((f) => !seen.has(f.path) && seen.add(f.path));
}

export async function buildUpstreamPackV1(
  pack: UpstreamPackYaml,
  opts: BuildV1Options = {},
): Promise<BuildV1Result> {
  const progress = opts.progress ?? (() => undefined);
  const issues: FlowIssue[] = [...pack.issues];
  const files: PackFile[] = [];
  const components: PackV1Component[] = [];
  const sources: JsonValue[] = [];
  const lock: Parameters<typeof buildPackLock>[0][number][] = [];
  const operations = new Map<string, string[]>();
  progress(`reading ${pack.components.length} component(s) (upstream pack.yaml layout)`);
  for (const c of pack.components) {
    const fail = (code: string, message: string): void => {
      issues.push({ severity: 'error', code, message, file: pack.file, ...c.pos });
    };
    if (!c.wasmFile) {
      fail(
        'pack_file_missing',
        `component '${c.id}': wasm '${c.wasm}' not found (build the component first)`,
      );
      continue;
    }
    const wasm = new Uint8Array(await readFile(c.wasmFile));
    let described: PreparedComponent | undefined;
    if (opts.describe) {
      try {
        described = await opts.describe({ name: c.id, version: c.version, bytes: wasm });
      } catch (e) {
        fail(
          'pack_component_invalid',
          `component '${c.id}' (${c.wasm}) cannot be loaded: ${(e as Error).message}`,
        );
        continue;
      }
    }
    const declaredOps = Array.isArray(c.raw['operations'])
      ? c.raw['operations'].filter(isRecord).filter((o) => typeof o['name'] === 'string')
      : [];
    const opNames =
      declaredOps.length > 0
        ? declaredOps.map((o) => String(o['name']))
        : (described?.operations.map((o) => o.name) ?? []);
    if (described)
      operations.set(
        c.id,
        described.operations.map((o) => o.name),
      );
    const wasmPath = `components/${c.id}.wasm`;
    const digest = `sha256:${sha256Hex(wasm)}`;
    files.push({ path: wasmPath, bytes: wasm });
    components.push({
      id: c.id,
      version: c.version,
      supports: Array.isArray(c.raw['supports']) ? c.raw['supports'].map(String) : ['messaging'],
      world: c.world,
      profiles: json(c.raw['profiles'], { default: 'stateless', supported: ['stateless'] }),
      capabilities: json(c.raw['capabilities'], { wasi: { random: false, clocks: false }, host: {} }),
      configurators: json(c.raw['configurators'], null),
      operations:
        declaredOps.length > 0
          ? declaredOps.map((o) => ({
              name: String(o['name']),
              input_schema: json(o['input_schema'], null),
              output_schema: json(o['output_schema'], null),
            }))
          : opNames.map((name) => ({ name, input_schema: null, output_schema: null })),
      config_schema: json(c.raw['config_schema'], null),
      resources: json(c.raw['resources'], {}),
      dev_flows: {},
    });
    sources.push({
      artifact: { inline: { wasm_path: wasmPath } },
      component_id: c.id,
      name: c.id,
      resolved: { digest },
      source: `file://${c.wasm}`,
    });
    lock.push({
      id: c.id,
      version: c.version,
      world: c.world,
      ref: `file://${c.wasm}`,
      digest,
      operations: opNames,
    });
  }

  progress(`compiling ${pack.flows.length} flow(s)`);
  const flows: FlowV1Entry[] = [];
  const compiled: Parameters<typeof checkFlowCalls>[0][number][] = [];
  const warnings: string[] = [];
  for (const ref of pack.flows) {
    const r = await compileUpstreamFlow(ref, pack, { offline: true, operations });
    issues.push(...r.issues.filter((i) => i.severity === 'error'));
    warnings.push(...r.issues.filter((i) => i.severity === 'warning').map(formatIssue));
    if (!r.flow) continue;
    if (flows.some((f) => f.id === r.flow!.id)) {
      issues.push({
        severity: 'error',
        code: 'flow_duplicate',
        message: `flow '${r.flow.id}' is defined twice in the pack`,
        file: ref.abs,
        line: 1,
        column: 1,
      });
      continue;
    }
    compiled.push({ flow: r.flow, file: ref.abs, nodeAt: r.nodeAt! });
    flows.push({
      id: r.flow.id,
      kind: r.flow.kind,
      flow: r.flow,
      tags: ref.tags,
      entrypoints: ref.entrypoints.length > 0 ? ref.entrypoints : Object.keys(r.flow.entrypoints),
    });
  }
  issues.push(...checkFlowCalls(compiled));
  const assets = await collectAssets(pack, issues);
  if (flows.length === 0 && issues.length === 0)
    issues.push({
      severity: 'error',
      code: 'pack_manifest_invalid',
      message: 'a pack needs at least one flow (pack.yaml flows: [{id, file}])',
      file: pack.file,
      line: 1,
      column: 1,
    });
  if (issues.length > 0)
    throw new FlowValidationError(
      `${pack.file}: ${issues.length} error(s), nothing written:\n  ${issues.map(formatIssue).join('\n  ')}`,
      issues,
    );

  files.push(...assets, { path: PACK_LOCK_CBOR, bytes: buildPackLock(lock) });
  // As in every pack-v1 built here: a signature covers only the manifest, so the manifest pins each
  // payload file (assets included) and none can be swapped with the SBOM rewritten.
  const manifest = composeManifestV1({
    packId: pack.packId,
    ...(pack.name !== undefined ? { name: pack.name } : {}),
    version: pack.version,
    kind: pack.kind,
    publisher: pack.publisher,
    components: components.sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)),
    flows,
    files,
    sources,
  });
  progress(
    `writing pack-v1: ${files.length} payload file(s) + manifest.cbor, sbom.cbor${opts.key ? ', signature' : ''}`,
  );
  const archive = await assemblePackV1({
    manifest,
    files,
    ...(opts.key ? { key: opts.key } : {}),
    ...(opts.keyId ? { keyId: opts.keyId } : {}),
  });
  return { ...archive, warnings };
}
