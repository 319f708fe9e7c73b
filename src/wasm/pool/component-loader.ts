/**
 * The per-digest work of the pool, done once on the main thread: transpile (through the disk
 * TranspileCache), detect the world, check the imports against what the runner provides, and
 * compile the core modules. Compiled modules are kept per memory cap, because the cap is written
 * into each module's memory limits (memory-cap.ts) before compiling; tenants that share a cap (the
 * usual case) share the compiled modules, which every worker receives by structured clone.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ComponentLoadError } from '../../common/errors.js';
import type { ComponentSpec, ComponentWorld } from '../../core/component-runtime.js';
import { isHostImport } from '../host/host-imports.js';
import { isUpstreamImport } from '../host/upstream-imports.js';
import { errorText } from '../../common/errors.js';
import { TranspileCache, type TranspiledComponent } from '../transpile-cache.js';
import { createWasiSandbox, wasiKey } from '../wasi-sandbox.js';
import { wasmApi } from '../wasm-api.js';
import { detectWorld } from '../world-detect.js';
import { capModuleMemory, pagesForBytes } from './memory-cap.js';
import type { CompiledModule, LoadRequest } from './protocol.js';

/** A component after the main-thread work: what every worker needs to load it. */
export interface LoadedComponent {
  digest: string;
  name: string;
  version: string;
  world: ComponentWorld;
  exports: string[];
  hasDescriptor: boolean;
  imports: string[];
  entry: TranspiledComponent;
  jsUrl: string;
}

export interface LoaderStats {
  /** Core modules compiled by this loader (per digest and memory cap). */
  compiles: number;
  compileMs: number;
  /** Modules whose memory limits were rewritten to the cap. */
  capped: number;
}

let wasiNames: Set<string> | undefined;

/**
 * Interface names the runner can satisfy: the sandboxed WASI set (any 0.2.x), `greentic:host`, and
 * upstream's host interfaces with their types-only packages.
 */
export function providedImport(name: string): boolean {
  wasiNames ??= new Set(Object.keys(createWasiSandbox()));
  return wasiNames.has(wasiKey(name)) || isHostImport(name) || isUpstreamImport(name);
}

export class ComponentLoader {
  private readonly components = new Map<string, Promise<LoadedComponent>>();
  /** `${digest}/${capPages}` -> compiled core modules. */
  private readonly compiled = new Map<string, Promise<Array<[string, CompiledModule]>>>();
  private readonly counters: LoaderStats = { compiles: 0, compileMs: 0, capped: 0 };

  constructor(readonly cache: TranspileCache) {}

  stats(): LoaderStats & { components: number; compiledSets: number } {
    return { ...this.counters, components: this.components.size, compiledSets: this.compiled.size };
  }

  /** Transpiled, world detected, imports checked; once per digest. */
  load(spec: ComponentSpec): Promise<LoadedComponent> {
    const digest = TranspileCache.digest(spec.bytes);
    let pending = this.components.get(digest);
    if (!pending) {
      pending = this.doLoad(spec, digest);
      this.components.set(digest, pending);
      pending.catch(() => this.components.delete(digest));
    }
    return pending;
  }

  /** A component already loaded by digest, or undefined. */
  known(digest: string): Promise<LoadedComponent> | undefined {
    return this.components.get(digest);
  }

  /** The load request a worker needs, with core modules compiled under `memoryCapBytes`. */
  async loadRequest(component: LoadedComponent, memoryCapBytes: number): Promise<LoadRequest> {
    return {
      k: 'load',
      digest: component.digest,
      name: component.name,
      version: component.version,
      world: component.world,
      jsUrl: component.jsUrl,
      modules: await this.modules(component, memoryCapBytes),
      imports: component.imports,
    };
  }

  private modules(
    component: LoadedComponent,
    memoryCapBytes: number,
  ): Promise<Array<[string, CompiledModule]>> {
    const capPages = pagesForBytes(memoryCapBytes);
    const key = `${component.digest}/${capPages}`;
    let pending = this.compiled.get(key);
    if (!pending) {
      pending = this.compile(component, capPages);
      this.compiled.set(key, pending);
      pending.catch(() => this.compiled.delete(key));
    }
    return pending;
  }

  private async compile(
    component: LoadedComponent,
    capPages: number,
  ): Promise<Array<[string, CompiledModule]>> {
    const started = performance.now();
    try {
      const out = await Promise.all(
        component.entry.coreModules.map(async (name): Promise<[string, CompiledModule]> => {
          const capped = capModuleMemory(
            new Uint8Array(await readFile(join(component.entry.dir, name))),
            capPages,
          );
          if (capped.changed) this.counters.capped++;
          return [name, await wasmApi.compile(capped.bytes)];
        }),
      );
      this.counters.compiles += out.length;
      this.counters.compileMs += Math.round(performance.now() - started);
      return out;
    } catch (err) {
      throw new ComponentLoadError(`component '${component.name}' failed to compile: ${errorText(err)}`, {
        component: component.name,
        digest: component.digest,
      });
    }
  }

  private async doLoad(spec: ComponentSpec, digest: string): Promise<LoadedComponent> {
    const entry = await this.cache.transpile(spec.bytes, spec.name);
    const info = detectWorld(spec.name, entry.exports);
    const missing = entry.imports.filter((name) => !providedImport(name));
    if (missing.length) {
      throw new ComponentLoadError(
        `component '${spec.name}' imports interfaces this runner does not provide: ${missing.join(', ')}`,
        { component: spec.name, digest, missing },
      );
    }
    return {
      digest,
      name: spec.name,
      version: spec.version,
      world: info.world,
      exports: info.exports,
      hasDescriptor: info.hasDescriptor,
      imports: entry.imports,
      entry,
      jsUrl: pathToFileURL(join(entry.dir, entry.jsFile)).href,
    };
  }
}
