import { existsSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { validateFlow, validateFlowCalls } from '../../flows/flow-validator.js';
import type { FlowDefinition, FlowIssue } from '../../flows/flow.types.js';
import { componentTargetOf } from '../../flows/operations.js';
import { parseFlowSource } from '../../flows/ygtc-loader.js';
import type { PreparedComponent } from '../../core/component-runtime.js';
import type { DescribeComponent } from '../greentic-pack/describe-components.js';
import { openUpstreamPackDir } from '../../packs/format/pack-v1/upstream-pack-yaml.js';
import { validateUpstreamPack, type UpstreamFlowFile } from './validate-upstream-pack.js';

/** One file's outcome. */
export interface FileReport {
  file: string;
  flow?: string;
  errors: number;
  warnings: number;
}

export interface ValidationReport {
  ok: boolean;
  files: FileReport[];
  issues: FlowIssue[];
  errors: number;
  warnings: number;
}

/** A set of flows checked together: a pack directory, a plain directory, or the loose files given. */
interface FlowSet {
  files: string[];
  /**
   * The pack's components (pack directories only): component nodes must name one, and where a
   * component could be described, call one of its declared operations.
   */
  components?: ReadonlyMap<string, PreparedComponent> | ReadonlySet<string>;
  /** Loose files: calls to flows outside the set are warnings, not errors. */
  loose: boolean;
}

const MANIFESTS = ['pack.yaml', 'pack.yml', 'manifest.json'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function walkFlows(dir: string): Promise<string[]> {
  const out: string[] = [];
  const entries = await readdir(dir, { withFileTypes: true });
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walkFlows(p)));
    else if (e.isFile() && e.name.endsWith('.ygtc')) out.push(p);
  }
  return out;
}

export interface ValidateOptions {
  /** Reads each pack component's world and operations; without it only names are checked. */
  describe?: DescribeComponent;
}

interface PackComponent {
  name: string;
  version: string;
  path?: string;
}

/**
 * Describes every component of a pack directory. All or nothing: one that cannot be read (not
 * built yet, not a component) is a warning, and the pack falls back to checking names only.
 */
async function describePack(
  dir: string,
  file: string,
  list: readonly PackComponent[],
  describe: DescribeComponent,
): Promise<{ described?: Map<string, PreparedComponent>; issues: FlowIssue[] }> {
  const described = new Map<string, PreparedComponent>();
  const issues: FlowIssue[] = [];
  for (const c of list) {
    const why = await (async (): Promise<string | undefined> => {
      if (c.path === undefined) return 'it has no path';
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await readFile(path.resolve(dir, c.path)));
      } catch (e) {
        const gone = (e as NodeJS.ErrnoException).code === 'ENOENT';
        return `${c.path}: ${gone ? 'no such file (build the component first)' : (e as Error).message}`;
      }
      try {
        described.set(c.name, await describe({ name: c.name, version: c.version, bytes }));
        return undefined;
      } catch (e) {
        return `${c.path}: ${(e as Error).message}`;
      }
    })();
    if (why !== undefined) {
      issues.push({
        ...issueAt(
          file,
          'component_not_described',
          `operations of component '${c.name}' not checked: ${why}`,
        ),
        severity: 'warning',
      });
    }
  }
  return issues.length === 0 ? { described, issues } : { issues };
}

/** The flows and components a pack directory's manifest lists (nothing else is read). */
async function packSet(
  dir: string,
  manifest: string,
  opts: ValidateOptions,
): Promise<{ set: FlowSet; issues: FlowIssue[] } | FlowIssue> {
  const file = path.join(dir, manifest);
  let m: unknown;
  try {
    const text = await readFile(file, 'utf8');
    m = manifest.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    return issueAt(file, 'pack_manifest_invalid', `cannot read the pack manifest: ${(e as Error).message}`);
  }
  if (!isRecord(m)) return issueAt(file, 'pack_manifest_invalid', 'the pack manifest must be a mapping');
  const flows = Array.isArray(m['flows']) ? m['flows'] : [];
  const files = flows
    .map((f: unknown) =>
      typeof f === 'string' ? f : isRecord(f) && typeof f['path'] === 'string' ? f['path'] : '',
    )
    .filter((f: string) => f !== '')
    .map((f: string) => path.resolve(dir, f));
  const list: PackComponent[] = [];
  for (const c of Array.isArray(m['components']) ? m['components'] : []) {
    if (!isRecord(c) || typeof c['name'] !== 'string') continue;
    const version = typeof m['version'] === 'string' ? m['version'] : '0.0.0';
    list.push({
      name: c['name'],
      version: typeof c['version'] === 'string' ? c['version'] : version,
      ...(typeof c['path'] === 'string' ? { path: c['path'] } : {}),
    });
  }
  const names = new Set(list.map((c) => c.name));
  if (!opts.describe || list.length === 0)
    return { set: { files, components: names, loose: false }, issues: [] };
  const { described, issues } = await describePack(dir, file, list, opts.describe);
  return { set: { files, components: described ?? names, loose: false }, issues };
}

function issueAt(file: string, code: string, message: string): FlowIssue {
  return { severity: 'error', code, message, file, line: 1, column: 1 };
}

/**
 * Validates `.ygtc` files and directories. A directory holding a pack manifest is checked as a
 * pack (its listed flows, its components and, with `describe`, their operations, calls between
 * its flows); another directory as the
 * `.ygtc` files under it; loose files as one set. Unreadable paths are issues, not exceptions.
 */
export async function validatePaths(
  paths: readonly string[],
  cwd = process.cwd(),
  opts: ValidateOptions = {},
): Promise<ValidationReport> {
  const sets: FlowSet[] = [];
  const issues: FlowIssue[] = [];
  const loose: string[] = [];
  const upstreamFiles: UpstreamFlowFile[] = [];
  for (const p of paths) {
    const abs = path.resolve(cwd, p);
    let st;
    try {
      st = await stat(abs);
    } catch {
      issues.push(issueAt(abs, 'file_not_found', `no such file or directory`));
      continue;
    }
    if (st.isDirectory()) {
      const manifest = MANIFESTS.find((m) => existsSync(path.join(abs, m)));
      // Upstream's pack.yaml layout (pack_id, flows[].file) is checked the way its build compiles it.
      const upstream = manifest ? await openUpstreamPackDir(abs) : undefined;
      if (upstream) {
        const r = await validateUpstreamPack(upstream, opts.describe);
        issues.push(...r.issues);
        upstreamFiles.push(...r.files);
      } else if (manifest) {
        const pack = await packSet(abs, manifest, opts);
        if ('severity' in pack) issues.push(pack);
        else {
          sets.push(pack.set);
          issues.push(...pack.issues);
        }
      } else {
        const files = await walkFlows(abs);
        if (files.length === 0) issues.push(issueAt(abs, 'no_flows', 'no .ygtc files in this directory'));
        else sets.push({ files, loose: false });
      }
    } else {
      loose.push(abs);
    }
  }
  if (loose.length > 0) sets.push({ files: loose, loose: true });

  const files: FileReport[] = [];
  const flowIds = new Map<string, string>();
  for (const set of sets) {
    const parsed: FlowDefinition[] = [];
    for (const file of set.files) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        const gone = (e as NodeJS.ErrnoException).code === 'ENOENT';
        issues.push(
          issueAt(
            file,
            gone ? 'file_not_found' : 'file_unreadable',
            gone ? 'no such file' : (e as Error).message,
          ),
        );
        continue;
      }
      const out = parseFlowSource(text, file);
      issues.push(...out.issues);
      if (out.partial) {
        issues.push(...validateFlow(out.partial, set.components ? { components: set.components } : {}));
        if (!set.components) issues.push(...componentsUnchecked(out.partial));
        parsed.push(out.partial);
      }
    }
    const ids = new Map<string, string>();
    for (const f of parsed) {
      const other = ids.get(f.id);
      if (other !== undefined && f.id !== '') {
        issues.push(
          issueAt(f.file, 'flow_duplicate', `flow id '${f.id}' is also defined in ${rel(other, cwd)}`),
        );
      } else {
        ids.set(f.id, f.file);
      }
    }
    for (const i of validateFlowCalls(parsed)) {
      // A loose file may call a flow that simply was not passed in; say so without failing.
      if (set.loose && i.code === 'unknown_flow') {
        issues.push({
          ...i,
          severity: 'warning',
          message: `${i.message.replace(/ \(pack flows: [^)]*\)$/, '')}; pass the pack directory to check calls between flows`,
        });
      } else {
        issues.push(i);
      }
    }
    for (const f of parsed) if (f.id !== '') flowIds.set(f.file, f.id);
  }

  const byFile = new Map<string, FileReport>();
  for (const set of sets) {
    for (const f of set.files) {
      const id = flowIds.get(f);
      byFile.set(f, { file: f, ...(id !== undefined ? { flow: id } : {}), errors: 0, warnings: 0 });
    }
  }
  for (const f of upstreamFiles)
    byFile.set(f.file, {
      file: f.file,
      ...(f.flow !== undefined ? { flow: f.flow } : {}),
      errors: 0,
      warnings: 0,
    });
  for (const i of issues) {
    const r = byFile.get(i.file) ?? { file: i.file, errors: 0, warnings: 0 };
    if (i.severity === 'error') r.errors++;
    else r.warnings++;
    byFile.set(i.file, r);
  }
  for (const r of byFile.values()) files.push(r);
  const sorted = issues
    .map((i) => ({ ...i, file: rel(i.file, cwd) }))
    .sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column);
  const errors = sorted.filter((i) => i.severity === 'error').length;
  return {
    ok: errors === 0,
    files: files.map((f) => ({ ...f, file: rel(f.file, cwd) })),
    issues: sorted,
    errors,
    warnings: sorted.length - errors,
  };
}

/**
 * Outside a pack nothing says which components exist or what they declare, so a component node
 * passing here proves nothing about it: say so once per file, at its first component node.
 */
export function componentsUnchecked(flow: FlowDefinition): FlowIssue[] {
  const calls: { node: string; component: string; line: number; column: number }[] = [];
  for (const node of flow.nodes.values()) {
    const target = componentTargetOf(node);
    if (target) calls.push({ node: node.id, component: target.component, ...node.loc });
  }
  const first = calls[0];
  if (!first) return [];
  const names = calls.map((c) => `'${c.node}' (${c.component})`).join(', ');
  return [
    {
      severity: 'warning',
      code: 'components_unchecked',
      message: `component node${calls.length === 1 ? '' : 's'} ${names} not checked: components and their operations are checked only inside a pack; validate the pack directory (the one holding pack.yaml) instead`,
      file: flow.file,
      line: first.line,
      column: first.column,
    },
  ];
}

/** Paths under the working directory are shown relative to it, as editors and CI logs expect. */
export function rel(file: string, cwd: string): string {
  const r = path.relative(cwd, file);
  return r !== '' && !r.startsWith('..') && !path.isAbsolute(r) ? r : file;
}
