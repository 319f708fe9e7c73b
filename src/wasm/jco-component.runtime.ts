/**
 * The foundation's ComponentRuntime: jco-transpiled components run in this process.
 *
 * prepare(spec)  once per digest: transpile (disk cache) -> compile core modules -> import the
 *                generated JS -> detect the world -> check imports -> 0.6: describe() in a
 *                scratch instance to read the operations.
 * invoke(t, c)   in the instance of (tenantKey(t), digest), created lazily and NEVER shared
 *                across tenants; a trap drops it, so the next call gets a fresh one.
 *
 * Limitation: calls run synchronously on the event loop. A component that loops forever blocks
 * the process, and a component that grows its memory is bounded only by V8. The next issue's
 * worker pool runs the same building blocks (transpile-cache, world-detect, component-calls,
 * wasi-sandbox) inside worker threads that are terminated at the call deadline / memory cap.
 */
import { Inject, Injectable, Logger, Optional, type OnModuleDestroy } from '@nestjs/common';
import { ComponentLoadError, ComponentTrapError, errorText } from '../common/errors.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import { callComponent, callOperation, describeOperations, trapError } from './component-calls.js';
import {
  WORLD_V01,
  type ComponentCall,
  type ComponentOperation,
  type ComponentRuntime,
  type ComponentSpec,
  type ComponentWorld,
  type PreparedComponent,
} from '../core/component-runtime.js';
import {
  transpileStats,
  TranspileCache,
  type ComponentExports,
  type ComponentImports,
  type LoadedArtifact,
} from './transpile-cache.js';
import { FIRE_AND_FORGET, type HostAnswer, type HostOp } from './pool/protocol.js';
import { hostImports } from './host/host-imports.js';
import { isUpstreamImport, upstreamImports } from './host/upstream-imports.js';
import { createWasiSandbox, missingImports, withWasiVersions } from './wasi-sandbox.js';
import { detectWorld } from './world-detect.js';

export interface JcoRuntimeOptions {
  /** Transpile cache directory (default: `$GREENTIC_CACHE_DIR` or `<cwd>/.cache/greentic`). */
  cacheDir?: string;
  /** A specific cache (tests use a fresh one to model a new process); default: shared per dir. */
  transpileCache?: TranspileCache;
}

export const JCO_RUNTIME_OPTIONS = Symbol('JCO_RUNTIME_OPTIONS');

/** One instance per component and assets directory (one component may sit in two packs). */
function instanceKey(digest: string, assetsDir: string | undefined): string {
  return assetsDir ? `${digest}\u0000${assetsDir}` : digest;
}

/** What is known of a digest once prepared (shared by every spec carrying those bytes). */
interface LoadedComponent {
  digest: string;
  world: ComponentWorld;
  exports: string[];
  operations: ComponentOperation[];
  artifact: LoadedArtifact;
}

interface InstanceSlot {
  instance: Promise<ComponentExports>;
}

@Injectable()
export class JcoComponentRuntime implements ComponentRuntime, OnModuleDestroy {
  readonly kind = 'jco-inprocess';
  private readonly logger = new Logger(JcoComponentRuntime.name);
  private readonly cache: TranspileCache;
  /** Sandboxed WASI imports; stateless, so one set serves every instance. */
  private readonly wasi: ComponentImports = createWasiSandbox();
  /** WASI imports with a pack's assets preopened read-only, per assets directory. */
  private readonly wasiWithAssets = new Map<string, ComponentImports>();
  /**
   * greentic:host and upstream's host interfaces, answering every call `unavailable`: this runtime
   * has no host services (the pool runtime has), but a component that imports them still loads,
   * so it can be described (greentic-pack build) and run as far as it goes without them.
   */
  private readonly hostRefusals: ComponentImports = refusingHostImports();
  private readonly components = new Map<string, Promise<LoadedComponent>>();
  /** tenantKey -> digest -> instance slot. */
  private readonly instances = new Map<string, Map<string, InstanceSlot>>();
  private readonly counters = { instantiations: 0, instantiateMs: 0, calls: 0, traps: 0 };

  constructor(@Optional() @Inject(JCO_RUNTIME_OPTIONS) options?: JcoRuntimeOptions) {
    this.cache = options?.transpileCache ?? TranspileCache.forDir(options?.cacheDir);
  }

  async prepare(spec: ComponentSpec): Promise<PreparedComponent> {
    const digest = TranspileCache.digest(spec.bytes);
    let pending = this.components.get(digest);
    if (!pending) {
      pending = this.load(spec, digest);
      this.components.set(digest, pending);
      pending.catch(() => this.components.delete(digest));
    }
    const loaded = await pending;
    return {
      name: spec.name,
      version: spec.version,
      digest,
      world: loaded.world,
      exports: [...loaded.exports],
      operations: loaded.operations.map((op) => ({ ...op })),
      ...(spec.defaultOperation ? { defaultOperation: spec.defaultOperation } : {}),
      ...(spec.assetsDir ? { assetsDir: spec.assetsDir } : {}),
    };
  }

  async invoke(tenant: TenantCtx, request: ComponentCall): Promise<unknown> {
    const call = { ...request, operation: callOperation(request) };
    const loaded = await this.components.get(call.component.digest);
    if (!loaded) {
      throw new ComponentLoadError(
        `component '${call.component.name}' (${call.component.digest.slice(0, 12)}) was not prepared by this runtime`,
        { component: call.component.name, digest: call.component.digest },
      );
    }
    const key = tenantKey(tenant);
    const slotKey = instanceKey(loaded.digest, call.component.assetsDir);
    let slot = this.slotFor(key, tenant, loaded, call.component);
    let instance = await slot.instance;
    // While this call waited, a concurrent call may have trapped (or release() ran) and dropped
    // the slot: never enter a dropped instance, take the current one.
    while (this.instances.get(key)?.get(slotKey) !== slot) {
      slot = this.slotFor(key, tenant, loaded, call.component);
      instance = await slot.instance;
    }
    this.counters.calls++;
    try {
      return callComponent(instance, tenant, call);
    } catch (err) {
      if (err instanceof ComponentTrapError) {
        this.counters.traps++;
        this.dropSlot(key, slotKey, slot);
        this.logger.warn(`${err.message} (instance dropped)`);
      }
      throw err;
    }
  }

  async release(tenant: TenantCtx): Promise<void> {
    this.instances.delete(tenantKey(tenant));
  }

  stats(): Record<string, unknown> {
    const instancesPerTenant: Record<string, number> = {};
    for (const [key, slots] of this.instances) instancesPerTenant[key] = slots.size;
    const { instantiations, instantiateMs, calls, traps } = this.counters;
    return {
      kind: this.kind,
      /** Real transpiles by this runtime's cache (`transpileProcess`: every cache of the process). */
      transpiles: this.cache.stats().transpiles,
      transpileProcess: transpileStats(),
      cache: { dir: this.cache.cacheDir, ...this.cache.stats() },
      preparedComponents: this.components.size,
      instancesPerTenant,
      instantiations,
      instantiateMsAvg: instantiations ? instantiateMs / instantiations : 0,
      calls,
      traps,
    };
  }

  async close(): Promise<void> {
    this.instances.clear();
    this.components.clear();
  }

  async onModuleDestroy(): Promise<void> {
    await this.close();
  }

  private async load(spec: ComponentSpec, digest: string): Promise<LoadedComponent> {
    const started = performance.now();
    const artifact = await this.cache.load(spec.bytes, spec.name);
    const info = detectWorld(spec.name, artifact.exports);
    const missing = missingImports(artifact.imports, { ...this.wasi, ...this.hostRefusals }).filter(
      (name) => !isUpstreamImport(name),
    );
    if (missing.length) {
      throw new ComponentLoadError(
        `component '${spec.name}' imports interfaces this runner does not provide: ${missing.join(', ')}`,
        { component: spec.name, digest, missing },
      );
    }
    let operations: ComponentOperation[] = [{ name: 'execute' }];
    if (info.world !== WORLD_V01) {
      // A scratch instance, never a tenant's: describe() must not leave state in one. Upstream's
      // node.describe() does not show in the export list, so every 0.6 component is asked.
      let scratch: ComponentExports;
      try {
        scratch = await artifact.instantiate(
          withWasiVersions({ ...this.wasi, ...this.hostRefusals }, artifact.imports),
        );
      } catch (err) {
        throw new ComponentLoadError(`component '${spec.name}' failed to instantiate: ${errorText(err)}`, {
          component: spec.name,
          digest,
        });
      }
      operations = describeOperations(scratch, spec.name);
    }
    this.logger.log(
      `prepared component '${spec.name}@${spec.version}' (${info.world}, ${digest.slice(0, 12)}, ` +
        `${operations.length} operation(s)) in ${Math.round(performance.now() - started)} ms`,
    );
    return { digest, world: info.world, exports: info.exports, operations, artifact };
  }

  private slotFor(
    key: string,
    tenant: TenantCtx,
    loaded: LoadedComponent,
    component: PreparedComponent,
  ): InstanceSlot {
    let slots = this.instances.get(key);
    if (!slots) {
      slots = new Map();
      this.instances.set(key, slots);
    }
    const slotKey = instanceKey(loaded.digest, component.assetsDir);
    const existing = slots.get(slotKey);
    if (existing) return existing;

    const started = performance.now();
    const slot: InstanceSlot = {
      instance: loaded.artifact.instantiate(this.importsFor(loaded, component)).then(
        (instance) => {
          this.counters.instantiations++;
          this.counters.instantiateMs += performance.now() - started;
          return instance;
        },
        (err: unknown) => {
          this.dropSlot(key, slotKey, slot);
          throw trapError(err, tenant, component, 'instantiate');
        },
      ),
    };
    slots.set(slotKey, slot);
    return slot;
  }

  /**
   * Imports for an instance: the sandboxed WASI set, with the pack's assets when it has some, and
   * the host interfaces that refuse every call.
   */
  private importsFor(loaded: LoadedComponent, component: PreparedComponent): ComponentImports {
    const dir = component.assetsDir;
    let wasi = this.wasi;
    if (dir) {
      wasi = this.wasiWithAssets.get(dir) ?? createWasiSandbox({ assetsDir: dir });
      this.wasiWithAssets.set(dir, wasi);
    }
    return withWasiVersions({ ...wasi, ...this.hostRefusals }, loaded.artifact.imports);
  }

  private dropSlot(key: string, slotKey: string, slot: InstanceSlot): void {
    const slots = this.instances.get(key);
    if (slots?.get(slotKey) !== slot) return;
    slots.delete(slotKey);
    if (slots.size === 0) this.instances.delete(key);
  }
}

function refusingHostImports(): ComponentImports {
  const refuse = (op: HostOp): HostAnswer | undefined =>
    FIRE_AND_FORGET.has(op)
      ? undefined
      : {
          tag: 'err',
          val: {
            code: 'unavailable',
            message: `host function '${op}' is not available in the in-process runtime (use the pool runtime)`,
          },
        };
  return { ...hostImports(refuse), ...upstreamImports(refuse, { shouldCancel: () => false }) };
}
