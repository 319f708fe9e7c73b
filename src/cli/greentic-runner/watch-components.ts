/**
 * `greentic-runner start --pack <dir> --watch-component <project>...`: the dev loop. Each
 * greentic-component project is built into the pack directory (at the path its pack.yaml entry of
 * the same name gives) before the runner starts, then rebuilt on every change
 * (`greentic-component build --watch`); the runner's pack watcher sees the new file and reloads
 * the pack, so a change to a component's source reaches the running runner with no restart.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { GreenticError } from '../../common/errors.js';
import { MANIFEST, runCli as componentCli, type CliIO } from '../greentic-component/cli.js';

export interface WatchedComponent {
  project: string;
  name: string;
  /** Where the pack expects the component's wasm. */
  out: string;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Matches each project to its pack.yaml component entry (by name); refuses what cannot work. */
export async function resolveWatchedComponents(
  packDir: string,
  projects: readonly string[],
): Promise<WatchedComponent[]> {
  const dir = path.resolve(packDir);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new GreenticError(
      'cli_watch_needs_dir',
      `--watch-component needs --pack to be a pack directory (pack.yaml), not ${packDir}`,
      400,
    );
  }
  const manifest: unknown = parseYaml(
    await readFile(path.join(dir, 'pack.yaml'), 'utf8').catch(() => {
      throw new GreenticError('cli_watch_needs_dir', `${dir}: no pack.yaml`, 400);
    }),
  );
  const entries = isRecord(manifest) && Array.isArray(manifest['components']) ? manifest['components'] : [];
  const paths = new Map<string, string>();
  for (const c of entries) {
    if (!isRecord(c) || typeof c['name'] !== 'string') continue;
    // this runner's layout (path) or upstream's (wasm)
    const rel =
      typeof c['path'] === 'string' ? c['path'] : typeof c['wasm'] === 'string' ? c['wasm'] : undefined;
    if (rel) paths.set(c['name'], rel);
  }
  const out: WatchedComponent[] = [];
  for (const p of projects) {
    const project = path.resolve(p);
    const raw = await readFile(path.join(project, MANIFEST), 'utf8').catch(() => {
      throw new GreenticError(
        'cli_not_a_project',
        `${p}: no ${MANIFEST} (a greentic-component project)`,
        400,
      );
    });
    const name = (JSON.parse(raw) as { name?: unknown }).name;
    const rel = typeof name === 'string' ? paths.get(name) : undefined;
    if (typeof name !== 'string' || rel === undefined) {
      throw new GreenticError(
        'cli_watch_unknown_component',
        `${p}: pack ${dir} has no component '${String(name)}' (it has: ${[...paths.keys()].join(', ') || 'none'})`,
        400,
      );
    }
    out.push({ project, name, out: path.resolve(dir, rel) });
  }
  return out;
}

/** One build of each component (awaited, so the runner starts on current code); false if one failed. */
export async function buildWatchedComponents(
  components: readonly WatchedComponent[],
  io: CliIO,
): Promise<boolean> {
  for (const c of components) {
    if ((await componentCli(['build', c.project, '-o', c.out], io)) !== 0) return false;
  }
  return true;
}

/** `build --watch` of each component until `signal` aborts. */
export function watchComponents(
  components: readonly WatchedComponent[],
  io: CliIO,
  signal: AbortSignal,
): Promise<unknown> {
  return Promise.all(
    components.map((c) => componentCli(['build', c.project, '--watch', '-o', c.out], io, { signal })),
  );
}
