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
  for (const [rel, text] of files) {
    const target = join(witDir, rel);
    await mkdir(join(target, '..'), { recursive: true });
    // Unchanged files keep their mtime, so watchers and build caches see no change.
    const current = await readFile(target, 'utf8').catch(() => undefined);
    if (current !== text) await writeFile(target, text);
  }
  return { witDir, worldName: 'component', files: files.map(([rel]) => rel) };
}
