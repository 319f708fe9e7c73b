/**
 * A component project's `wit/` folder: the author's world, which includes one Greentic world and
 * the `greentic:host` imports, plus copies of those packages under `deps/` (wit-parser resolves
 * foreign packages there). Written by `greentic-component new` and by the test fixtures, from the
 * runner's own `wit/` folder, so components are always built against the interfaces the runner
 * provides.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type WorldVersion = '0.1' | '0.6';

export const WORLD_VERSIONS: readonly WorldVersion[] = ['0.1', '0.6'];

/** The runner's `wit/` folder (src/wasm/authoring and dist/wasm/authoring are both 3 levels down). */
export const RUNNER_WIT_DIR = resolve(fileURLToPath(new URL('../../../wit', import.meta.url)));

const COMPONENT_PACKAGES: Record<WorldVersion, { dir: string; version: string }> = {
  '0.1': { dir: 'component-0.1.0', version: '0.1.0' },
  '0.6': { dir: 'component-0.6.0', version: '0.6.0' },
};
const HOST_VERSION = '0.1.0';

export interface WitProjectOptions {
  world: WorldVersion;
  /** The author's package, e.g. `local:weather` (default `local:component`). */
  packageName?: string;
  /** Include the `greentic:host` imports (default true). */
  host?: boolean;
}

export interface WitProject {
  witDir: string;
  /** World name to hand to componentize-js. */
  worldName: string;
  files: string[];
}

/** The world file text for a project. */
export function worldWit(options: WitProjectOptions): string {
  const pkg = options.packageName ?? 'local:component';
  const { version } = COMPONENT_PACKAGES[options.world];
  const lines = [
    `// The component's world: greentic:component@${version}${options.host === false ? '' : " plus the runner's host imports"}.`,
    `package ${pkg};`,
    '',
    'world component {',
    `  include greentic:component/component@${version};`,
  ];
  if (options.host !== false) lines.push(`  include greentic:host/imports@${HOST_VERSION};`);
  lines.push('}', '');
  return lines.join('\n');
}

/** Writes `<witDir>/world.wit` and `<witDir>/deps/...`; returns what to build with. */
export async function writeWitProject(witDir: string, options: WitProjectOptions): Promise<WitProject> {
  const { dir, version } = COMPONENT_PACKAGES[options.world];
  const files: Array<[string, string]> = [
    ['world.wit', worldWit(options)],
    [
      join('deps', `greentic-component-${version}`, 'world.wit'),
      await readFile(join(RUNNER_WIT_DIR, dir, 'world.wit'), 'utf8'),
    ],
  ];
  if (options.host !== false) {
    files.push([
      join('deps', `greentic-host-${HOST_VERSION}`, 'host.wit'),
      await readFile(join(RUNNER_WIT_DIR, 'host', 'host.wit'), 'utf8'),
    ]);
  }
  await writeFiles(witDir, files);
  return { witDir, worldName: 'component', files: files.map(([rel]) => rel) };
}

/** Upstream host interfaces a component built against upstream's WIT may import. */
export type UpstreamHostImport = 'state' | 'http' | 'secrets';

/** Upstream packages under `wit/upstream/`: directory -> the import line a world uses. */
const UPSTREAM_IMPORTS: Record<UpstreamHostImport, { dir: string; iface: string }> = {
  state: { dir: 'state-1.0.0', iface: 'greentic:state/state-store@1.0.0' },
  http: { dir: 'http-1.0.0', iface: 'greentic:http/http-client@1.0.0' },
  secrets: { dir: 'secrets-store-1.0.0', iface: 'greentic:secrets-store/secrets-store@1.0.0' },
};
/** Packages every upstream project carries (the world and the types its interfaces use). */
const UPSTREAM_BASE = ['component-0.6.0', 'types-core-0.6.0', 'interfaces-types-0.1.0'];

export interface UpstreamWitProjectOptions {
  /** The author's package (default `local:component`). */
  packageName?: string;
  /** Host interfaces to import (default none). */
  imports?: readonly UpstreamHostImport[];
}

/** The world file of a project built against upstream's `greentic:component/component@0.6.0`. */
export function upstreamWorldWit(options: UpstreamWitProjectOptions = {}): string {
  const lines = [
    "// The component's world: upstream's greentic:component@0.6.0 (node) and the host interfaces it uses.",
    `package ${options.packageName ?? 'local:component'};`,
    '',
    'world component {',
    '  include greentic:component/component@0.6.0;',
    ...(options.imports ?? []).map((name) => `  import ${UPSTREAM_IMPORTS[name].iface};`),
    '}',
    '',
  ];
  return lines.join('\n');
}

/**
 * Writes a project against upstream's WIT (`wit/upstream/`): `<witDir>/world.wit` plus the
 * upstream packages under `deps/`, named as upstream names them so the component links there too.
 */
export async function writeUpstreamWitProject(
  witDir: string,
  options: UpstreamWitProjectOptions = {},
): Promise<WitProject> {
  const dirs = [...UPSTREAM_BASE, ...(options.imports ?? []).map((name) => UPSTREAM_IMPORTS[name].dir)];
  const files: Array<[string, string]> = [['world.wit', upstreamWorldWit(options)]];
  for (const dir of dirs) {
    files.push([
      join('deps', `greentic-${dir}`, 'package.wit'),
      await readFile(join(RUNNER_WIT_DIR, 'upstream', dir, 'package.wit'), 'utf8'),
    ]);
  }
  await writeFiles(witDir, files);
  return { witDir, worldName: 'component', files: files.map(([rel]) => rel) };
}

async function writeFiles(witDir: string, files: ReadonlyArray<readonly [string, string]>): Promise<void> {
  for (const [rel, text] of files) {
    const target = join(witDir, rel);
    await mkdir(join(target, '..'), { recursive: true });
    // Unchanged files keep their mtime, so watchers and build caches see no change.
    const current = await readFile(target, 'utf8').catch(() => undefined);
    if (current !== text) await writeFile(target, text);
  }
}
