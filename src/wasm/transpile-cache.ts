/**
 * Component bytes -> jco-transpiled JS + core modules, once per digest, cached on disk.
 *
 * Layout: `<cacheDir>/transpiled/<sha256>-jco<version>-p<patch>/` holding `meta.json`,
 * `component.js` (jco's `instantiate(getCoreModule, imports)` module) and `component.core*.wasm`.
 * An entry is written in a temp directory and published with one rename, so a crash never leaves
 * a half entry. Core modules are compiled with `WebAssembly.compile` once per process per digest
 * and the same `WebAssembly.Module`s serve every instance.
 *
 * No Nest dependency: the next issue's worker threads load artifacts through this module too.
 */
import { mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ComponentLoadError, errorText } from '../common/errors.js';
import { wasmApi, type CoreModule } from './wasm-api.js';
import { packageVersion, publishDirAtomic, resolveCacheDir, sha256Hex, tempPathFor } from './cache-utils.js';
import { notAComponent } from './wasm-input-errors.js';

export type JcoExportKind = 'function' | 'instance';

/** What `meta.json` of a cache entry records. */
export interface TranspileMeta {
  digest: string;
  jcoVersion: string;
  patchLevel: number;
  /** Interfaces the component imports, as keys of the `imports` object (`wasi:cli/stdout`...). */
  imports: string[];
  /** jco's export list: `[name, 'function' | 'instance']`, including jco's camelCase aliases. */
  exports: Array<[string, JcoExportKind]>;
  jsFile: string;
  coreModules: string[];
  transpileMs: number;
  createdAt: string;
}

export interface TranspiledComponent extends TranspileMeta {
  /** Absolute directory of the cache entry. */
  dir: string;
}

/** Import object handed to jco's `instantiate`: interface name -> implementation namespace. */
export type ComponentImports = Record<string, object>;

/** The exports object jco's `instantiate` resolves to (functions and interface namespaces). */
export type ComponentExports = Record<string, unknown>;

/** A transpiled component, compiled and imported: ready to be instantiated any number of times. */
export interface LoadedArtifact {
  digest: string;
  imports: string[];
  exports: Array<[string, JcoExportKind]>;
  coreModules: ReadonlyMap<string, CoreModule>;
  instantiate(imports: ComponentImports): Promise<ComponentExports>;
}

/** The module jco generates in `instantiation: 'async'` mode. */
interface GeneratedBindings {
  instantiate(
    getCoreModule: (name: string) => CoreModule,
    imports: ComponentImports,
  ): Promise<ComponentExports>;
}

/** Process-wide counters (every TranspileCache adds to them). */
export interface TranspileStats {
  /** Real jco transpiles (cache misses). */
  transpiles: number;
  /** Entries found on disk (no transpile). */
  diskHits: number;
  /** Digests already transpiled in this cache instance (no disk access). */
  memoryHits: number;
  /** Core modules compiled with `WebAssembly.compile`. */
  compiles: number;
  transpileMs: number;
}

const globalStats: TranspileStats = {
  transpiles: 0,
  diskHits: 0,
  memoryHits: 0,
  compiles: 0,
  transpileMs: 0,
};

/** Process-wide transpile counters, e.g. to assert that a second load did not transpile. */
export function transpileStats(): TranspileStats {
  return { ...globalStats };
}

export function resetTranspileStats(): void {
  Object.assign(globalStats, { transpiles: 0, diskHits: 0, memoryHits: 0, compiles: 0, transpileMs: 0 });
}

const JS_NAME = 'component';
/**
 * Bumped whenever the post-processing of jco's output changes (part of the cache key).
 * 1: `_debugLog` reads `process.env.JCO_DEBUG` once per module instead of on every call
 *    (it ran on every lowered import and cost ~40% of a componentize-js call).
 * 2: transpiled with `importBindings: 'hybrid'` (TRANSPILE_OPTIONS).
 */
const PATCH_LEVEL = 2;
const DEBUG_CHECK = 'if (!globalThis?.process?.env?.JCO_DEBUG) { return; }';

/** jco's options; measured (bench/components, floor breakdown) and documented in docs/performance.md. */
const TRANSPILE_OPTIONS = {
  name: JS_NAME,
  instantiation: 'async',
  // jco's API spells "no .d.ts" this way (the `noTypescript` option is ignored by the API).
  emitTypescriptDeclarations: false,
  // Never inline core modules as base64: every module goes through getCoreModule (compiled once).
  base64Cutoff: 0,
  // An import whose function carries jco's `Symbol.for('cabiLower')` (its own lowering) is called
  // directly, not through jco's per-call task bookkeeping: StarlingMonkey reads the monotonic clock
  // ~7 times per export call, which cost ~25 µs of a ~40 µs empty call. wasi-sandbox.ts decides
  // which imports offer one.
  importBindings: 'hybrid',
} as const;

function patchGeneratedJs(source: string): string {
  if (!source.includes(DEBUG_CHECK)) return source;
  const patched = source.replaceAll(DEBUG_CHECK, 'if (!__greenticJcoDebug) { return; }');
  const at = patched.indexOf('export function instantiate');
  if (at === -1) return source;
  return (
    patched.slice(0, at) +
    'const __greenticJcoDebug = !!globalThis?.process?.env?.JCO_DEBUG;\n' +
    patched.slice(at)
  );
}

/** Dynamic import of the generated bindings (a file URL; `@vite-ignore` keeps bundlers quiet). */
function importBindings(url: string): Promise<unknown> {
  return import(/* @vite-ignore */ url);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** A temp entry older than this is what a crash left half-written (a transpile takes seconds). */
const LEFTOVER_AGE_MS = 3_600_000;

async function touch(file: string, at: number): Promise<void> {
  const t = new Date(at);
  await utimes(file, t, t).catch(() => undefined);
}

/** When `file` (else `fallback`, for an entry without its meta.json) was last modified; 0 if neither exists. */
async function lastUsed(file: string, fallback: string): Promise<number> {
  for (const f of [file, fallback]) {
    try {
      return (await stat(f)).mtimeMs;
    } catch {
      // try the next
    }
  }
  return 0;
}

export class TranspileCache {
  private static readonly shared = new Map<string, TranspileCache>();

  /** The process-wide cache for a directory (what the runtime uses unless told otherwise). */
  static forDir(cacheDir?: string): TranspileCache {
    const dir = resolveCacheDir(cacheDir);
    let cache = TranspileCache.shared.get(dir);
    if (!cache) {
      cache = new TranspileCache(dir);
      TranspileCache.shared.set(dir, cache);
    }
    return cache;
  }

  readonly cacheDir: string;
  readonly jcoVersion = packageVersion('@bytecodealliance/jco');
  private readonly transpiled = new Map<string, Promise<TranspiledComponent>>();
  private readonly loaded = new Map<string, Promise<LoadedArtifact>>();
  private readonly counters: TranspileStats = {
    transpiles: 0,
    diskHits: 0,
    memoryHits: 0,
    compiles: 0,
    transpileMs: 0,
  };

  /** A cache with its own in-memory state (use `forDir` to share one per process). */
  constructor(cacheDir?: string) {
    this.cacheDir = resolveCacheDir(cacheDir);
  }

  static digest(bytes: Uint8Array): string {
    return sha256Hex(bytes);
  }

  /** Directory of the cache entry for a digest (key = digest + jco version + patch level). */
  entryDir(digest: string): string {
    return join(this.cacheDir, 'transpiled', `${digest}-jco${this.jcoVersion}-p${PATCH_LEVEL}`);
  }

  stats(): TranspileStats & { digestsInMemory: number; loaded: number } {
    return { ...this.counters, digestsInMemory: this.transpiled.size, loaded: this.loaded.size };
  }

  /** Transpiled files for these bytes: from memory, from disk, or transpiled now (once). */
  transpile(bytes: Uint8Array, label = 'component'): Promise<TranspiledComponent> {
    const digest = TranspileCache.digest(bytes);
    const known = this.transpiled.get(digest);
    if (known) {
      this.count('memoryHits');
      return known;
    }
    const pending = this.fetchOrTranspile(bytes, digest, label);
    this.transpiled.set(digest, pending);
    pending.catch(() => this.transpiled.delete(digest));
    return pending;
  }

  /** Transpiled, compiled and imported: ready to instantiate. Once per digest per cache. */
  load(bytes: Uint8Array, label = 'component'): Promise<LoadedArtifact> {
    const digest = TranspileCache.digest(bytes);
    const known = this.loaded.get(digest);
    if (known) return known;
    const pending = this.transpile(bytes, label).then((entry) => this.loadEntry(entry, label));
    this.loaded.set(digest, pending);
    pending.catch(() => this.loaded.delete(digest));
    return pending;
  }

  /**
   * Deletes the entries on disk that no process has used for `maxAgeMs` (an entry's `meta.json`
   * is touched when a process reads it and at every prune of a process that holds it), and the
   * leftovers of writes that died half-way. Entries this cache holds are touched, never deleted:
   * a worker started later loads its component from them. Another process's reader sees an entry
   * whole or not at all (it is renamed away first), and transpiles it again if it is gone.
   */
  async prune(maxAgeMs: number, now = Date.now()): Promise<{ removed: string[]; kept: number }> {
    const root = join(this.cacheDir, 'transpiled');
    let names: string[];
    try {
      names = await readdir(root);
    } catch {
      return { removed: [], kept: 0 };
    }
    const held = new Set([...this.transpiled.keys()].map((d) => basename(this.entryDir(d))));
    const removed: string[] = [];
    let kept = 0;
    for (const name of names) {
      const dir = join(root, name);
      if (held.has(name)) {
        await touch(join(dir, 'meta.json'), now);
        kept++;
        continue;
      }
      const leftover = name.startsWith('.tmp-');
      const usedAt = await lastUsed(leftover ? dir : join(dir, 'meta.json'), dir);
      if (now - usedAt < (leftover ? LEFTOVER_AGE_MS : maxAgeMs)) {
        kept++;
        continue;
      }
      // An entry is renamed away first, so a reader elsewhere sees it whole or not at all.
      const doomed = leftover ? dir : tempPathFor(dir);
      if (!leftover) {
        try {
          await rename(dir, doomed);
        } catch {
          continue; // gone meanwhile: another process pruned it
        }
      }
      await rm(doomed, { recursive: true, force: true });
      removed.push(name);
    }
    return { removed, kept };
  }

  /** Drops the in-memory state of a digest (the disk entry stays). */
  forget(digest: string): void {
    this.transpiled.delete(digest);
    this.loaded.delete(digest);
  }

  private count(key: keyof TranspileStats, n = 1): void {
    this.counters[key] += n;
    globalStats[key] += n;
  }

  private async fetchOrTranspile(
    bytes: Uint8Array,
    digest: string,
    label: string,
  ): Promise<TranspiledComponent> {
    const dir = this.entryDir(digest);
    const fromDisk = await this.readEntry(dir);
    if (fromDisk) {
      this.count('diskHits');
      // Marks it used, for prune() in this and every other process sharing the directory.
      await touch(join(dir, 'meta.json'), Date.now());
      return fromDisk;
    }
    // Entries are published whole, so a directory without a complete entry was tampered with.
    if (await exists(dir)) await rm(dir, { recursive: true, force: true });

    const notComponent = notAComponent(bytes);
    if (notComponent)
      throw new ComponentLoadError(`component '${label}' could not be transpiled: it ${notComponent}`, {
        digest,
      });
    const started = performance.now();
    // Imported on a cache miss only (~150 ms): a worker loading entries from disk never needs jco.
    const { transpile } = await import('@bytecodealliance/jco');
    let out: Awaited<ReturnType<typeof transpile>>;
    try {
      out = await transpile(bytes, TRANSPILE_OPTIONS as Parameters<typeof transpile>[1]);
    } catch (err) {
      throw new ComponentLoadError(`component '${label}' could not be transpiled: ${errorText(err)}`, {
        digest,
      });
    }
    const transpileMs = performance.now() - started;
    this.count('transpiles');
    this.count('transpileMs', Math.round(transpileMs));

    const jsFile = `${JS_NAME}.js`;
    const coreModules = Object.keys(out.files).filter((name) => name.endsWith('.wasm'));
    const js = out.files[jsFile];
    if (!js) throw new ComponentLoadError(`component '${label}': jco produced no ${jsFile}`, { digest });
    const meta: TranspileMeta = {
      digest,
      jcoVersion: this.jcoVersion,
      patchLevel: PATCH_LEVEL,
      imports: out.imports,
      exports: out.exports,
      jsFile,
      coreModules,
      transpileMs: Math.round(transpileMs),
      createdAt: new Date().toISOString(),
    };

    // Write everything in a temp dir next to the entry, then publish it with one rename.
    await mkdir(join(this.cacheDir, 'transpiled'), { recursive: true });
    const tmp = tempPathFor(dir);
    try {
      await mkdir(tmp, { recursive: true });
      await writeFile(join(tmp, jsFile), patchGeneratedJs(new TextDecoder().decode(js)));
      for (const name of coreModules) await writeFile(join(tmp, name), out.files[name]!);
      await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta, null, 2));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await publishDirAtomic(tmp, dir);
    return { ...meta, dir };
  }

  /** A complete entry from disk, or undefined (a broken entry is treated as absent). */
  private async readEntry(dir: string): Promise<TranspiledComponent | undefined> {
    let meta: TranspileMeta;
    try {
      meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as TranspileMeta;
    } catch {
      return undefined;
    }
    for (const name of [meta.jsFile, ...meta.coreModules]) {
      if (!(await exists(join(dir, name)))) return undefined;
    }
    return { ...meta, dir };
  }

  private async loadEntry(entry: TranspiledComponent, label: string): Promise<LoadedArtifact> {
    const modules = new Map<string, CoreModule>();
    try {
      await Promise.all(
        entry.coreModules.map(async (name) => {
          modules.set(name, await wasmApi.compile(await readFile(join(entry.dir, name))));
        }),
      );
    } catch (err) {
      throw new ComponentLoadError(`component '${label}' failed to compile: ${errorText(err)}`, {
        digest: entry.digest,
      });
    }
    this.count('compiles', modules.size);

    const bindings = (await importBindings(
      pathToFileURL(join(entry.dir, entry.jsFile)).href,
    )) as GeneratedBindings;
    if (typeof bindings.instantiate !== 'function') {
      throw new ComponentLoadError(`component '${label}': generated bindings have no instantiate()`, {
        digest: entry.digest,
      });
    }
    const getCoreModule = (name: string): CoreModule => {
      const module = modules.get(name);
      if (!module) throw new Error(`core module '${name}' is not part of component ${entry.digest}`);
      return module;
    };
    return {
      digest: entry.digest,
      imports: entry.imports,
      exports: entry.exports,
      coreModules: modules,
      instantiate: (imports) => bindings.instantiate(getCoreModule, imports),
    };
  }
}
