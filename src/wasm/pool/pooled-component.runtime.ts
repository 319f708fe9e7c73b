/**
 * The default ComponentRuntime: components run in worker threads, a pool per tenant.
 *
 * prepare(spec)  once per digest, on the main thread: transpile (disk cache), detect the world,
 *                check imports; 0.6 components are described once, in a scratch worker under a
 *                deadline (describe() is component code too). Core modules are compiled per
 *                memory cap and shared with every worker.
 * invoke(t, c)   in a worker of tenant t, in t's own instance of the component; bounded by the
 *                call's deadline (worker stopped and replaced), the tenant's memory cap (instance
 *                and worker discarded), the tenant's concurrency and queue (ComponentBusy).
 */
import { Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { ComponentError, ComponentLoadError, errorText } from '../../common/errors.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import {
  WORLD_V01,
  type ComponentCall,
  type ComponentOperation,
  type ComponentRuntime,
  type ComponentSpec,
  type PreparedComponent,
} from '../../core/component-runtime.js';
import { callOperation } from '../component-calls.js';
import { HostCalls, type HostServices } from '../host/host-calls.js';
import { transpileStats, TranspileCache } from '../transpile-cache.js';
import { ComponentLoader, type LoadedComponent } from './component-loader.js';
import {
  DEFAULT_POOL_SETTINGS,
  sameSettings,
  tenantSettings,
  type PoolSettings,
  type TenantPoolLimits,
} from './pool-settings.js';
import type { WireCallContext } from './protocol.js';
import { TenantPool, type PoolJob, type TenantPoolEvents, type TenantPoolStats } from './tenant-pool.js';

export interface PooledRuntimeOptions {
  /** Transpile cache directory (default `$GREENTIC_CACHE_DIR` or `<cwd>/.cache/greentic`). */
  cacheDir?: string;
  /** A specific cache; default: a fresh one over `cacheDir` (one per runtime, like one per process). */
  transpileCache?: TranspileCache;
  /**
   * Cache entries no process has used for this long are deleted at start-up and once a day
   * (TranspileCache.prune); 0 or unset keeps them all.
   */
  cacheMaxAgeMs?: number;
  /** Process defaults (RunnerConfig); each tenant's bundle limits override them. */
  settings?: Partial<PoolSettings>;
  /** The tenant's `limits` from the bundle. */
  tenantLimits?(tenantId: string): TenantPoolLimits | undefined;
  host?: HostServices;
  /** Deadline of a component's describe() at prepare. */
  describeDeadlineMs?: number;
  /**
   * Which tenants use which components (prepared digests), to start their minimum of workers
   * with those components loaded when the application starts (onApplicationBootstrap).
   */
  warmup?(): Array<{ tenantId: string; digests: string[] }>;
  /** Longest the start-up waits for warm-up before going on (default 15 s). */
  warmupTimeoutMs?: number;
  events?: TenantPoolEvents;
}

interface Prepared {
  component: LoadedComponent;
  operations: ComponentOperation[];
}

const PREPARE_TENANT = '#prepare';
/** How often a long-running runner prunes the cache (and marks its own entries used). */
const PRUNE_EVERY_MS = 86_400_000;

export class PooledComponentRuntime implements ComponentRuntime, OnApplicationBootstrap, OnModuleDestroy {
  readonly kind = 'pool';
  private readonly logger = new Logger(PooledComponentRuntime.name);
  private readonly cache: TranspileCache;
  private readonly loader: ComponentLoader;
  private readonly hostCalls: HostCalls;
  private readonly base: PoolSettings;
  private readonly pools = new Map<string, TenantPool>();
  private readonly prepared = new Map<string, Promise<Prepared>>();
  /** Settled entries of `prepared`, for the callers that read them synchronously (warm, describe). */
  private readonly ready = new Map<string, Prepared>();
  private scratch: TenantPool | undefined;
  private pruner?: NodeJS.Timeout;
  private nextJobId = 1;
  private closed = false;

  constructor(private readonly options: PooledRuntimeOptions = {}) {
    this.cache = options.transpileCache ?? new TranspileCache(options.cacheDir);
    this.loader = new ComponentLoader(this.cache);
    this.hostCalls = new HostCalls(options.host ?? {});
    this.base = { ...DEFAULT_POOL_SETTINGS, ...options.settings };
  }

  get settings(): PoolSettings {
    return { ...this.base };
  }

  async prepare(spec: ComponentSpec): Promise<PreparedComponent> {
    const digest = TranspileCache.digest(spec.bytes);
    let pending = this.prepared.get(digest);
    if (!pending) {
      pending = this.doPrepare(spec);
      this.prepared.set(digest, pending);
      pending.then(
        (p) => this.ready.set(digest, p),
        () => this.prepared.delete(digest),
      );
    }
    const { component, operations } = await pending;
    return {
      name: spec.name,
      version: spec.version,
      digest,
      world: component.world,
      exports: [...component.exports],
      operations: operations.map((op) => ({ ...op })),
      ...(spec.defaultOperation ? { defaultOperation: spec.defaultOperation } : {}),
      ...(spec.assetsDir ? { assetsDir: spec.assetsDir } : {}),
    };
  }

  invoke(tenant: TenantCtx, call: ComponentCall): Promise<unknown> {
    const pending = this.prepared.get(call.component.digest);
    if (!pending)
      return Promise.reject(
        new ComponentLoadError(
          `component '${call.component.name}' (${call.component.digest.slice(0, 12)}) was not prepared by this runtime`,
          { component: call.component.name, digest: call.component.digest },
        ),
      );
    return pending.then((prepared) => this.submit(tenant, call, prepared));
  }

  private submit(tenant: TenantCtx, call: ComponentCall, prepared: Prepared): Promise<unknown> {
    if (this.closed) return Promise.reject(closedError());
    let operation: string;
    try {
      operation = callOperation(call);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    const pool = this.poolFor(tenant.tenantId);
    const tk = tenantKey(tenant);
    const deadlineMs = call.deadlineMs ?? pool.settings.deadlineMs;
    const id = this.nextJobId++;
    const { ctx } = call;
    const wire: WireCallContext = {
      flowId: ctx.flowId,
      nodeId: ctx.nodeId,
      messageId: ctx.messageId,
      userId: ctx.userId,
      sessionKey: ctx.sessionKey,
      text: ctx.text,
    };
    if (ctx.traceId !== undefined) wire.traceId = ctx.traceId;
    if (ctx.attempt !== undefined) wire.attempt = ctx.attempt;
    if (ctx.locale !== undefined) wire.locale = ctx.locale;
    const deadlineAt = performance.now() + deadlineMs;
    return new Promise((resolve, reject) => {
      const job: PoolJob = {
        id,
        tenant,
        tenantKey: tk,
        component: prepared.component,
        name: call.component.name,
        operation,
        request: {
          k: 'call',
          id,
          tk,
          t: tenant,
          d: call.component.digest,
          n: call.component.name,
          ...(call.component.assetsDir ? { a: call.component.assetsDir } : {}),
          op: operation,
          input: call.input,
          ctx: wire,
          deadlineMs,
        },
        deadlineMs,
        deadlineAt,
        scope: {
          tenant,
          component: call.component.name,
          operation,
          ctx,
          deadlineAt,
          // The call's span when the runtime is instrumented (it is active around invoke).
          span: trace.getActiveSpan(),
          logLines: 0,
        },
        orphanings: 0,
        resolve,
        reject,
      };
      pool.submit(job);
    });
  }

  /** Starts a tenant's minimum of workers with these components loaded (see TenantPool.warm). */
  async warm(tenantId: string, digests: readonly string[]): Promise<void> {
    if (this.closed) return;
    const components = digests.flatMap((d) => {
      const p = this.ready.get(d);
      return p ? [p.component] : [];
    });
    await this.poolFor(tenantId).warm(components);
  }

  async onApplicationBootstrap(): Promise<void> {
    const maxAge = this.options.cacheMaxAgeMs ?? 0;
    if (maxAge > 0) {
      // In the background: start-up does not wait on a walk of the cache directory.
      void this.pruneCache(maxAge);
      this.pruner = setInterval(() => void this.pruneCache(maxAge), PRUNE_EVERY_MS);
      this.pruner.unref();
    }
    const plan = this.options.warmup?.() ?? [];
    if (plan.length === 0) return;
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.options.warmupTimeoutMs ?? 15_000);
      timer.unref();
    });
    const outcome = await Promise.race([
      Promise.allSettled(plan.map((p) => this.warm(p.tenantId, p.digests))).then(() => 'done' as const),
      timeout,
    ]);
    clearTimeout(timer);
    this.logger.log(
      { tenants: plan.length, ms: Math.round(performance.now() - started), outcome },
      'component pools warmed',
    );
  }

  async release(tenant: TenantCtx): Promise<void> {
    const pool = this.pools.get(tenant.tenantId);
    if (!pool) return;
    pool.drop(tenantKey(tenant));
    // A reloaded bundle may have changed the tenant's limits: new calls go to a pool built with them.
    const settings = this.settingsFor(tenant.tenantId);
    if (!sameSettings(settings, pool.settings)) {
      this.pools.delete(tenant.tenantId);
      const successor = this.poolFor(tenant.tenantId);
      for (const job of pool.retire()) successor.submit(job);
    }
  }

  stats(): Record<string, unknown> {
    const tenants = this.tenantStats();
    const instancesPerTenant: Record<string, number> = {};
    let queueDepth = 0;
    let poolSize = 0;
    let inflight = 0;
    for (const s of Object.values(tenants)) {
      queueDepth += s.queued;
      poolSize += s.workers;
      inflight += s.inflight;
      for (const [tk, n] of Object.entries(s.instances))
        instancesPerTenant[tk] = (instancesPerTenant[tk] ?? 0) + n;
    }
    return {
      kind: this.kind,
      channel: this.base.channel,
      defaults: { ...this.base },
      /** Real transpiles by this runtime's cache (`transpileProcess`: every cache of the process). */
      transpiles: this.cache.stats().transpiles,
      transpileProcess: transpileStats(),
      cache: { dir: this.cache.cacheDir, ...this.cache.stats() },
      compile: this.loader.stats(),
      preparedComponents: this.ready.size,
      poolSize,
      inflight,
      queueDepth,
      instancesPerTenant,
      tenants,
    };
  }

  /** What the loader learnt of a prepared component beyond PreparedComponent (CLI describe). */
  componentInfo(digest: string): { imports: string[]; hasDescriptor: boolean } | undefined {
    const p = this.ready.get(digest);
    return p ? { imports: [...p.component.imports], hasDescriptor: p.component.hasDescriptor } : undefined;
  }

  /** Per-tenant pool counts (health details, metrics). */
  tenantStats(): Record<string, TenantPoolStats> {
    const out: Record<string, TenantPoolStats> = {};
    for (const [tenantId, pool] of this.pools) out[tenantId] = pool.stats();
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pruner);
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
    this.scratch?.close();
    this.scratch = undefined;
  }

  async onModuleDestroy(): Promise<void> {
    await this.close();
  }

  // ---- internals -----------------------------------------------------------------------------

  private async pruneCache(maxAgeMs: number): Promise<void> {
    try {
      const { removed, kept } = await this.cache.prune(maxAgeMs);
      if (removed.length > 0)
        this.logger.log(
          { dir: this.cache.cacheDir, removed: removed.length, kept, maxAgeDays: maxAgeMs / 86_400_000 },
          'transpile cache: entries unused for longer than the maximum age deleted',
        );
    } catch (e) {
      this.logger.warn({ dir: this.cache.cacheDir, err: errorText(e) }, 'transpile cache prune failed');
    }
  }

  private settingsFor(tenantId: string): PoolSettings {
    return tenantSettings(this.base, this.options.tenantLimits?.(tenantId));
  }

  private poolFor(tenantId: string): TenantPool {
    let pool = this.pools.get(tenantId);
    if (!pool) {
      pool = new TenantPool(
        tenantId,
        this.settingsFor(tenantId),
        this.loader,
        this.hostCalls,
        this.options.events,
      );
      this.pools.set(tenantId, pool);
    }
    return pool;
  }

  private async doPrepare(spec: ComponentSpec): Promise<Prepared> {
    const started = performance.now();
    const component = await this.loader.load(spec);
    let operations: ComponentOperation[] = [{ name: 'execute' }];
    if (component.world !== WORLD_V01) {
      // Upstream's node describes itself (`node.describe()`), which the export list does not
      // show: every 0.6 component is described, and one with neither describe has no operations.
      operations = await this.describe(component);
    }
    this.logger.log(
      `prepared component '${spec.name}@${spec.version}' (${component.world}, ${component.digest.slice(0, 12)}, ` +
        `${operations.length} operation(s)) in ${Math.round(performance.now() - started)} ms`,
    );
    return { component, operations };
  }

  private describe(component: LoadedComponent): Promise<ComponentOperation[]> {
    if (this.closed) return Promise.reject(closedError());
    if (!this.scratch) {
      // Scratch workers belong to no tenant, keep nothing and stop once prepares are done.
      this.scratch = new TenantPool(
        PREPARE_TENANT,
        { ...this.base, minWorkers: 0, maxWorkers: 1, idleMs: 2_000 },
        this.loader,
        this.hostCalls,
      );
    }
    const scratch = this.scratch;
    const deadlineMs = this.options.describeDeadlineMs ?? 30_000;
    return new Promise<ComponentOperation[]>((resolve, reject) => {
      scratch.submit(TenantPool.describeJob(this.nextJobId++, component, deadlineMs, resolve, reject));
    }).catch((e: unknown) => {
      if (e instanceof ComponentLoadError) throw e;
      throw new ComponentLoadError(
        `component '${component.name}' describe() failed: ${e instanceof Error ? e.message : String(e)}`,
        { component: component.name, digest: component.digest },
      );
    });
  }
}

function closedError(): ComponentError {
  return new ComponentError('component_runtime_closed', 'the component runtime is closed', 503);
}
