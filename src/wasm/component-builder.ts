/**
 * Making components without a Rust toolchain, cached by content hash under the cache dir
 * (`<cacheDir>/components/`), for test fixtures, the demo and the later `greentic-component` CLI:
 *
 *   buildJsComponent  JavaScript + WIT -> component, with componentize-js (~15 s, ~12 MB).
 *   assembleWat       component text format -> component, with jco's `parse` (milliseconds).
 *
 * componentize-js is a devDependency-sized tool, so it is imported only when a build is needed.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { packageVersion, resolveCacheDir, sha256Hex, writeFileAtomic } from './cache-utils.js';

export type ComponentizeFeature = 'stdio' | 'random' | 'clocks' | 'http' | 'fetch-event';

export interface BuildJsComponentOptions {
  /** The component's JS module (ESM). Relative imports are allowed; see the cache key below. */
  sourcePath: string;
  /** WIT file or directory. */
  witPath: string;
  worldName: string;
  cacheDir?: string;
  /** componentize-js engine features to leave out (fewer WASI imports). */
  disableFeatures?: ComponentizeFeature[];
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

const SOURCE_EXTENSIONS = new Set(['.js', '.mjs', '.cjs', '.json']);

/**
 * Builds a JS component with componentize-js and returns the path of the cached `.wasm`.
 * Cache key: every JS/JSON file in the source's directory (recursively, so relative imports are
 * covered), every `.wit` file of `witPath`, the world name, the disabled features and the
 * componentize-js version.
 */
export async function buildJsComponent(options: BuildJsComponentOptions): Promise<string> {
  const sourcePath = resolve(options.sourcePath);
  const witPath = resolve(options.witPath);
  const disableFeatures = [...(options.disableFeatures ?? [])].sort();
  const sources = await hashFiles(dirname(sourcePath), (p) => SOURCE_EXTENSIONS.has(extname(p)));
  const wits = (await stat(witPath)).isDirectory()
    ? await hashFiles(witPath, (p) => extname(p) === '.wit')
    : [[basename(witPath), sha256Hex(await readFile(witPath))]];
  const key = sha256Hex(
    JSON.stringify({
      tool: `componentize-js@${packageVersion('@bytecodealliance/componentize-js')}`,
      entry: relative(dirname(sourcePath), sourcePath),
      worldName: options.worldName,
      disableFeatures,
      sources,
      wits,
    }),
  );
  const name = `${basename(dirname(sourcePath))}-${basename(sourcePath, extname(sourcePath))}`;
  const target = join(resolveCacheDir(options.cacheDir), 'components', `${name}-${key.slice(0, 16)}.wasm`);

  return once(target, async () => {
    if (await isFile(target)) {
      stats.jsCacheHits++;
      return target;
    }
    const started = performance.now();
    const component = await withHostPreopens(async () => {
      const { componentize } = await import('@bytecodealliance/componentize-js');
      const out = await componentize({
        sourcePath,
        witPath,
        worldName: options.worldName,
        ...(disableFeatures.length ? { disableFeatures } : {}),
      });
      return out.component;
    });
    await writeFileAtomic(target, component);
    stats.jsBuilds++;
    stats.jsBuildMs += Math.round(performance.now() - started);
    return target;
  });
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
      throw new Error(`cannot assemble ${watPath}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
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
