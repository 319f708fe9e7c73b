#!/usr/bin/env node
// Builds the demo pack's weather_api component from weather.ts (with the component SDK) and installs
// it as examples/demo/packs/demo/components/weather_api/component.wasm (gitignored).
// Run by `npm start`'s prestart, after `tsc`: it uses the compiled dist/wasm modules.
// The build is cached per machine by its inputs ($GREENTIC_CACHE_DIR, else $XDG_CACHE_HOME/greentic
// or ~/.cache/greentic): the first takes 25-55 s, later starts milliseconds. It also warms the jco
// transpile cache ($GREENTIC_CACHE_DIR or .cache/greentic), so the runner's first load of the pack
// does not transpile either.
import { copyFile, readFile, rename, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const componentDir = join(root, 'examples/demo/packs/demo/components/weather_api');
const target = join(componentDir, 'component.wasm');
const cacheDir = process.env.GREENTIC_CACHE_DIR ?? join(root, '.cache', 'greentic');

const builderPath = join(root, 'dist/wasm/component-builder.js');
if (!existsSync(builderPath)) {
  console.error(`[build-demo] ${builderPath} is missing: run \`npm run build\` first`);
  process.exit(1);
}
const { buildJsComponent, builderStats } = await import(pathToFileURL(builderPath).href);
const { TranspileCache } = await import(pathToFileURL(join(root, 'dist/wasm/transpile-cache.js')).href);

const started = performance.now();
const built = await buildJsComponent({
  sourcePath: join(componentDir, 'weather.ts'),
  witPath: join(componentDir, 'wit'),
  worldName: 'component',
  // the per-machine build cache (componentCacheDir: $GREENTIC_CACHE_DIR, $XDG_CACHE_HOME/greentic or ~/.cache/greentic)
});
const bytes = await readFile(built);
const current = existsSync(target) ? await readFile(target) : undefined;
const install = !current || !bytes.equals(current);
if (install) {
  const tmp = `${target}.tmp-${process.pid}`;
  try {
    await copyFile(built, tmp);
    await rename(tmp, target);
  } finally {
    await rm(tmp, { force: true });
  }
}
const transpiled = await TranspileCache.forDir(cacheDir).transpile(new Uint8Array(bytes), 'weather_api');
const { jsBuilds } = builderStats();
console.log(
  `[build-demo] weather_api ${jsBuilds ? 'built' : 'from cache'}${install ? ', installed' : ', up to date'} ` +
    `in ${Math.round(performance.now() - started)} ms ` +
    `(${(bytes.length / 1e6).toFixed(1)} MB, sha256 ${transpiled.digest.slice(0, 12)}) -> ${target}`,
);
