import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ApplicationConfig, ContextIdFactory, DiscoveryService } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { Injector } from '@nestjs/core/injector/injector.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { RouterExplorer } from '@nestjs/core/router/router-explorer.js';
import { RequestContextHost } from '@nestjs/microservices/context/request-context-host.js';
import { RpcContextCreator } from '@nestjs/microservices/context/rpc-context-creator.js';
import { ListenersController } from '@nestjs/microservices/listeners-controller.js';

/**
 * Builds a durable controller's handler pipeline once per tenant instead of once per message.
 *
 * For a request-scoped controller, Nest (12.5) runs the whole handler factory on every request:
 * guards, interceptors, pipes, exception filters and parameter factories are looked up and wrapped
 * again (RouterExplorer.createCallbackProxy for HTTP, RpcContextCreator.create for the bus). With a
 * durable tree (TenantContextIdStrategy) every message of a tenant gets the same controller instance
 * and the same enhancers, so the factory's result is the same too: about a fifth of a webhook
 * message's CPU went to rebuilding it, twice (the webhook and the ingress controller).
 *
 * So results are memoised per controller instance and method, but only for controllers whose whole
 * tree is durable and whose enhancers (their own and the global request-scoped ones) are static or
 * durable: those are the ones that resolve to the same objects on every message. A plain
 * request-scoped controller gets a new instance per request and is never cached; a controller with a
 * per-request guard is left to Nest.
 *
 * The same holds for finding the controller instance: Nest's `Injector.loadPerContext` walks the
 * controller and every enhancer through its async loader on each message (a promise and a
 * resolution context apiece) only to find them resolved. For the same shareable controllers the
 * instance a durable tree resolved to is remembered per tree and handed back directly.
 *
 * Once a tenant's controller and pipeline are known, a message needs neither: the per-request
 * handlers Nest builds for request-scoped controllers (`createRequestScopedHandler`, HTTP and RPC)
 * are wrapped so that a message of a known tenant goes straight to its tenant's memoised pipeline,
 * without the per-request context id Nest would make, attach to the tenant's tree and register as
 * the REQUEST provider (nothing in a shareable controller's tree is per request, so nothing reads
 * it). Anything else (first message of a tenant, unknown tenancy, a controller that is not
 * shareable) takes Nest's own path.
 *
 * The five patched methods are internal to Nest: the spec next to this file fails if an upgrade
 * renames them or changes what they take.
 */
const cacheable = new Set<string>();
const built = new WeakMap<object, Map<string, unknown>>();
/** Controller instances by durable tree (a ContextId) and controller wrapper id. */
const resolvedInTree = new WeakMap<object, Map<string, unknown>>();
let installed = false;

function memo<T>(instance: unknown, key: string, inquirerId: unknown, make: () => T): T {
  if (
    typeof inquirerId !== 'string' ||
    !cacheable.has(inquirerId) ||
    !instance ||
    typeof instance !== 'object'
  )
    return make();
  let perInstance = built.get(instance);
  if (!perInstance) {
    perInstance = new Map();
    built.set(instance, perInstance);
  }
  let fn = perInstance.get(key) as T | undefined;
  if (fn === undefined) {
    fn = make();
    perInstance.set(key, fn);
  }
  return fn;
}

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/** Patches the two factories (idempotent, process-wide like Nest's own prototypes). */
export function installDurableHandlerCache(): void {
  if (installed) return;
  const http = RouterExplorer.prototype as unknown as { createCallbackProxy: Fn };
  const rpc = RpcContextCreator.prototype as unknown as { create: Fn };
  const injector = Injector.prototype as unknown as { loadPerContext: Fn };
  const httpHandlers = RouterExplorer.prototype as unknown as { createRequestScopedHandler: Fn };
  const rpcHandlers = ListenersController.prototype as unknown as { createRequestScopedHandler: Fn };
  if (
    typeof http.createCallbackProxy !== 'function' ||
    typeof rpc.create !== 'function' ||
    typeof injector.loadPerContext !== 'function' ||
    typeof httpHandlers.createRequestScopedHandler !== 'function' ||
    typeof rpcHandlers.createRequestScopedHandler !== 'function'
  )
    throw new Error(
      'Nest internals changed: RouterExplorer.createCallbackProxy or .createRequestScopedHandler, RpcContextCreator.create, Injector.loadPerContext or ListenersController.createRequestScopedHandler is gone',
    );
  installed = true;
  const createCallbackProxy = http.createCallbackProxy;
  // (instance, callback, methodName, moduleRef, requestMethod, contextId, inquirerId)
  http.createCallbackProxy = function (this: unknown, ...args: unknown[]) {
    return memo(args[0], `http:${String(args[2])}:${String(args[4])}`, args[6], () =>
      createCallbackProxy.apply(this, args),
    );
  };
  const create = rpc.create;
  // (instance, callback, moduleKey, methodName, contextId, inquirerId, defaultCallMetadata, reportUnhandledErrors)
  rpc.create = function (this: unknown, ...args: unknown[]) {
    return memo(args[0], `rpc:${String(args[3])}:${String(args[7])}`, args[5], () =>
      create.apply(this, args),
    );
  };
  const loadPerContext = injector.loadPerContext;
  // (instance, moduleRef, collection, ctx, wrapper?): resolves to the controller instance of ctx.
  injector.loadPerContext = function (this: unknown, ...args: unknown[]) {
    const tree = loadTarget(args);
    if (!tree) return loadPerContext.apply(this, args);
    const [id, ctx] = tree;
    const hit = resolvedInTree.get(ctx)?.get(id);
    // Callers await the result: a plain value saves them the loader's promises.
    if (hit !== undefined) return hit;
    return (loadPerContext.apply(this, args) as Promise<unknown>).then((instance) => {
      if (instance !== undefined && instance !== null) {
        let perTree = resolvedInTree.get(ctx);
        if (!perTree) resolvedInTree.set(ctx, (perTree = new Map()));
        perTree.set(id, instance);
      }
      return instance;
    });
  };

  const httpHandler = httpHandlers.createRequestScopedHandler;
  // (instanceWrapper, requestMethod, moduleRef, moduleKey, methodName) => (req, res, next)
  httpHandlers.createRequestScopedHandler = function (this: unknown, ...args: unknown[]) {
    const explorer = this as HttpExplorer;
    const nest = httpHandler.apply(this, args) as (...a: unknown[]) => Promise<void>;
    const [wrapper, requestMethod, , moduleKey, methodName] = args as [
      InstanceWrapper,
      unknown,
      unknown,
      string,
      string,
    ];
    const key = `http:${methodName}:${String(requestMethod)}`;
    return async (req: unknown, res: unknown, next: unknown): Promise<void> => {
      const pipeline = knownPipeline(wrapper, req, key) as ((...a: unknown[]) => Promise<void>) | undefined;
      if (!pipeline) return nest(req, res, next);
      try {
        await pipeline(req, res, next);
      } catch (err) {
        // What Nest's own handler does with an error its pipeline let through.
        const instance = wrapper.instance as Record<string, unknown>;
        explorer.exceptionsFilter
          .create(instance, instance[methodName], moduleKey)
          .next(err, new ExecutionContextHost([req, res, next]));
      }
    };
  };

  const rpcHandler = rpcHandlers.createRequestScopedHandler;
  // (wrapper, pattern, moduleRef, moduleKey, methodKey, defaultCallMetadata, isEventHandler, reportUnhandledErrors)
  rpcHandlers.createRequestScopedHandler = function (this: unknown, ...args: unknown[]) {
    const nest = rpcHandler.apply(this, args) as (...a: unknown[]) => unknown;
    const [wrapper, pattern, , , methodKey, , isEventHandler, reportUnhandledErrors] = args as [
      InstanceWrapper,
      unknown,
      unknown,
      unknown,
      string,
      unknown,
      boolean | undefined,
      boolean | undefined,
    ];
    // Event handlers may chain several handlers per pattern: left to Nest.
    if (isEventHandler) return nest;
    const key = `rpc:${methodKey}:${String(reportUnhandledErrors ?? false)}`;
    return (...call: unknown[]): unknown => {
      const [data, context] = call;
      if (data instanceof RequestContextHost) return nest(...call);
      const pipeline = knownPipeline(wrapper, { pattern, data, context }, key) as
        ((...a: unknown[]) => unknown) | undefined;
      return pipeline ? pipeline(data, context) : nest(...call);
    };
  };
}

interface HttpExplorer {
  exceptionsFilter: { create(...a: unknown[]): { next(err: unknown, host: unknown): void } };
}

interface TreeStrategy {
  durableTree(request: unknown): object | undefined;
}

/**
 * The memoised pipeline of a shareable controller for the tenant `request` belongs to, once Nest
 * has resolved that tenant's controller and built its pipeline; else undefined (Nest's path).
 */
function knownPipeline(wrapper: InstanceWrapper, request: unknown, key: string): unknown {
  if (!cacheable.has(wrapper.id)) return undefined;
  const strategy = (ContextIdFactory as unknown as { strategy?: Partial<TreeStrategy> }).strategy;
  if (typeof strategy?.durableTree !== 'function') return undefined;
  const tree = strategy.durableTree(request);
  const instance = tree && resolvedInTree.get(tree)?.get(wrapper.id);
  return instance ? built.get(instance)?.get(key) : undefined;
}

interface ContextIdLike {
  getParent?: (info: { token: unknown; isTreeDurable: boolean }) => object;
}

/** The wrapper id and durable tree of a loadPerContext call for a shareable controller, if it is one. */
function loadTarget(args: unknown[]): [string, object] | undefined {
  const [instance, , collection, ctx, given] = args as [
    object | undefined,
    unknown,
    Map<unknown, InstanceWrapper> | undefined,
    ContextIdLike | undefined,
    InstanceWrapper | undefined,
  ];
  const wrapper = given ?? collection?.get(instance?.constructor);
  if (!wrapper || !cacheable.has(wrapper.id) || !ctx?.getParent) return undefined;
  return [wrapper.id, ctx.getParent({ token: wrapper.token, isTreeDurable: true })];
}

/** Can every message of a tenant share this controller's pipeline? */
function shareable(wrapper: InstanceWrapper, globals: InstanceWrapper[]): boolean {
  if (wrapper.isDependencyTreeStatic() || !wrapper.isDependencyTreeDurable()) return false;
  return [...wrapper.getEnhancersMetadata(), ...globals].every(
    (e) => e.isDependencyTreeStatic() || e.isDependencyTreeDurable(),
  );
}

/** Marks the application's shareable controllers once the container is built. */
@Injectable()
export class DurableHandlerCache implements OnApplicationBootstrap {
  private readonly logger = new Logger(DurableHandlerCache.name);

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly appConfig: ApplicationConfig,
  ) {}

  onApplicationBootstrap(): void {
    installDurableHandlerCache();
    const globals = [
      ...this.appConfig.getGlobalRequestGuards(),
      ...this.appConfig.getGlobalRequestInterceptors(),
      ...this.appConfig.getGlobalRequestPipes(),
      ...this.appConfig.getGlobalRequestFilters(),
    ] as InstanceWrapper[];
    const shared: string[] = [];
    for (const w of this.discovery.getControllers()) {
      if (!shareable(w, globals)) continue;
      cacheable.add(w.id);
      shared.push(w.name);
    }
    this.logger.debug(`durable controllers with one pipeline per tenant: ${shared.join(', ') || 'none'}`);
  }
}
