/**
 * Making components without a Rust toolchain, cached by content hash, for test fixtures, the demo
 * and the `greentic-component` CLI:
 *
 *   buildJsComponent  JavaScript/TypeScript + WIT -> component: rolldown bundles the source with
 *                     the component SDK (sdk/component), componentize-js builds the bundle
 *                     (25-55 s, ~11 MB). Cached under the user cache dir (componentCacheDir).
 *   assembleWat       component text format -> component, with jco's `parse` (milliseconds).
 *
 * componentize-js and rolldown are devDependency-sized tools, imported only when a build needs them.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { bundleComponent, sdkVersion } from './authoring/component-bundle.js';
import { packageVersion, resolveCacheDir, sha256Hex, writeFileAtomic } from './cache-utils.js';
import { readableWatError } from './wasm-input-errors.js';

export type ComponentizeFeature = 'stdio' | 'random' | 'clocks' | 'http' | 'fetch-event';

/** What a component build reports as it goes (the CLI prints one line per event). */
export type BuildProgress =
  | { step: 'bundle'; modules: number; sdkModules: number; bytes: number; ms: number }
  | { step: 'cache'; hit: boolean; key: string; path: string }
  | { step: 'componentize'; elapsedMs: number; done: boolean }
  | { step: 'done'; path: string; bytes: number; cached: boolean; ms: number };

export interface BuildJsComponentOptions {
  /** The component's entry module (ESM, JavaScript or TypeScript); it may import the SDK. */
  sourcePath: string;
  /** WIT file or directory. */
  witPath: string;
  worldName: string;
  /** Default: componentCacheDir(). */
  cacheDir?: string;
  /** componentize-js engine features to leave out (fewer WASI imports). */
  disableFeatures?: ComponentizeFeature[];
  onProgress?(event: BuildProgress): void;
  /** How often a running componentize step reports (default 5 s). */
  progressEveryMs?: number;
}

export interface BuiltComponent {
  path: string;
  bytes: number;
  cached: boolean;
  /** The cache key (sha256 of the build's inputs). */
  key: string;
}

export interface AssembleWatOptions {
  cacheDir?: string;
}

export interface BuilderStats {
  jsBuilds: number;
  jsCacheHits: number;
  jsBuildMs: number;
  watBuilds: number;
  watCacheHits: number;
}

const stats: BuilderStats = { jsBuilds: 0, jsCacheHits: 0, jsBuildMs: 0, watBuilds: 0, watCacheHits: 0 };
const inFlight = new Map<string, Promise<string>>();

export function builderStats(): BuilderStats {
  return { ...stats };
}

/**
 * Where component builds are cached, so one source builds once per machine wherever it is built
 * from: `$GREENTIC_CACHE_DIR`, else `$XDG_CACHE_HOME/greentic`, else `~/.cache/greentic`.
 */
export function componentCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env['GREENTIC_CACHE_DIR']) return resolve(env['GREENTIC_CACHE_DIR']);
  if (env['XDG_CACHE_HOME']) return join(resolve(env['XDG_CACHE_HOME']), 'greentic');
  return join(homedir(), '.cache', 'greentic');
}

/** Builds a JS/TS component and returns the path of the cached `.wasm`. */
export async function buildJsComponent(options: BuildJsComponentOptions): Promise<string> {
  return (await buildComponent(options)).path;
}

/**
 * Builds a JS/TS component: bundle, then componentize unless the cache has it. Cache key: every
 * module the bundle read (the source's own and the SDK's, by content), the SDK and componentize-js
 * versions, every `.wit` file of `witPath`, the world name and the disabled features.
 */
export async function buildComponent(options: BuildJsComponentOptions): Promise<BuiltComponent> {
  const started = performance.now();
  const progress = options.onProgress ?? (() => undefined);
  const sourcePath = resolve(options.sourcePath);
  const witPath = resolve(options.witPath);
  const disableFeatures = [...(options.disableFeatures ?? [])].sort();
  const bundle = await bundleComponent(sourcePath).catch((e: Error) => {
    throw new Error(`cannot bundle ${sourcePath}: ${e.message}`, { cause: e });
  });
  const sdkModules = bundle.inputs.filter(([name]) => name.startsWith('sdk:')).length;
  progress({
    step: 'bundle',
    modules: bundle.inputs.length - sdkModules,
    sdkModules,
    bytes: Buffer.byteLength(bundle.code),
    ms: performance.now() - started,
  });
  const wits = (await stat(witPath)).isDirectory()
    ? await hashFiles(witPath, (p) => extname(p) === '.wit')
    : [[basename(witPath), sha256Hex(await readFile(witPath))]];
  const key = sha256Hex(
    JSON.stringify({
      tool: `componentize-js@${packageVersion('@bytecodealliance/componentize-js')}`,
      sdk: sdkVersion(),
      worldName: options.worldName,
      disableFeatures,
      // the bundle itself too: a rolldown upgrade that changes its output rebuilds
      bundle: sha256Hex(bundle.code),
      sources: bundle.inputs,
      wits,
    }),
  );
  const name = `${basename(dirname(sourcePath))}-${basename(sourcePath, extname(sourcePath))}`;
  const cacheDir = options.cacheDir ? resolveCacheDir(options.cacheDir) : componentCacheDir();
  const target = join(cacheDir, 'components', `${name}-${key.slice(0, 16)}.wasm`);

  let cached = true;
  await once(target, async () => {
    if (await isFile(target)) {
      stats.jsCacheHits++;
      return target;
    }
    cached = false;
    progress({ step: 'cache', hit: false, key, path: target });
    const bundled = join(cacheDir, 'bundles', `${name}-${key.slice(0, 16)}.js`);
    await writeFileAtomic(bundled, bundle.code);
    const t0 = performance.now();
    const ticker = setInterval(
      () => progress({ step: 'componentize', elapsedMs: performance.now() - t0, done: false }),
      options.progressEveryMs ?? 5000,
    );
    ticker.unref();
    try {
      const component = await withHostPreopens(async () => {
        const { componentize } = await import('@bytecodealliance/componentize-js');
        const out = await componentize({
          sourcePath: bundled,
          witPath,
          worldName: options.worldName,
          ...(disableFeatures.length ? { disableFeatures } : {}),
        });
        return out.component;
      });
      await writeFileAtomic(target, component);
    } finally {
      clearInterval(ticker);
    }
    progress({ step: 'componentize', elapsedMs: performance.now() - t0, done: true });
    stats.jsBuilds++;
    stats.jsBuildMs += Math.round(performance.now() - t0);
    return target;
  });
  if (cached) progress({ step: 'cache', hit: true, key, path: target });
  const bytes = (await stat(target)).size;
  progress({ step: 'done', path: target, bytes, cached, ms: performance.now() - started });
  return { path: target, bytes, cached, key };
}

/** Assembles a component-text-format file with jco `parse`; returns the path of the cached `.wasm`. */
export async function assembleWatFile(watPath: string, options: AssembleWatOptions = {}): Promise<string> {
  const text = await readFile(resolve(watPath), 'utf8');
  const key = sha256Hex(`jco@${packageVersion('@bytecodealliance/jco')}\n`, text);
  const name = basename(watPath, extname(watPath));
  const target = join(resolveCacheDir(options.cacheDir), 'components', `${name}-${key.slice(0, 16)}.wasm`);
  return once(target, async () => {
    if (await isFile(target)) {
      stats.watCacheHits++;
      return target;
    }
    const { parse } = await import('@bytecodealliance/jco');
    let bytes: Uint8Array;
    try {
      bytes = await parse(text);
    } catch (err) {
      // file:line:col: message, not the parser's Rust Debug dump.
      throw new Error(
        `cannot assemble ${watPath}:${readableWatError(err instanceof Error ? err.message : String(err))}`,
        {
          cause: err,
        },
      );
    }
    await writeFileAtomic(target, bytes);
    stats.watBuilds++;
    return target;
  });
}

/** Assembles a component-text-format file (cached) and returns the component bytes. */
export async function assembleWat(watPath: string, options: AssembleWatOptions = {}): Promise<Uint8Array> {
  return new Uint8Array(await readFile(await assembleWatFile(watPath, options)));
}

function once(key: string, build: () => Promise<string>): Promise<string> {
  const known = inFlight.get(key);
  if (known) return known;
  const pending = build().finally(() => inFlight.delete(key));
  inFlight.set(key, pending);
  return pending;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** `[relativePath, sha256]` of the files under `dir` that `keep` accepts, sorted. */
async function hashFiles(dir: string, keep: (path: string) => boolean): Promise<Array<[string, string]>> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const files = entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .filter(
      (p) =>
        keep(p) &&
        !relative(dir, p)
          .split('/')
          .some((seg) => seg.startsWith('.') || seg === 'node_modules'),
    )
    .sort();
  return Promise.all(
    files.map(async (p): Promise<[string, string]> => [relative(dir, p), sha256Hex(await readFile(p))]),
  );
}

/**
 * componentize-js 0.23 reads the WIT and the sources through preview2-shim's process-global
 * filesystem, whose preopens are empty by default since preview2-shim 0.26 (deny by default).
 * The host root is preopened for the duration of the builds, then cleared again. The runtime's
 * components never see these: they get an isolated filesystem namespace without preopens.
 */
let activeBuilds = 0;
let preopenedHere = false;

async function withHostPreopens<T>(build: () => Promise<T>): Promise<T> {
  const fs = (await import('@bytecodealliance/preview2-shim/filesystem')) as unknown as {
    _getPreopens(): unknown[];
    _setPreopens(preopens: Record<string, string>): void;
    _addPreopen(virtualPath: string, hostPath: string): void;
    _clearPreopens(): void;
  };
  if (activeBuilds++ === 0) {
    preopenedHere = fs._getPreopens().length === 0;
    if (preopenedHere) fs._setPreopens({ '/': '/' });
    else fs._addPreopen('/', '/');
  }
  try {
    return await build();
  } finally {
    if (--activeBuilds === 0 && preopenedHere) fs._clearPreopens();
  }
}
