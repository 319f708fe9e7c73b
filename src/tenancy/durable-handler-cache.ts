import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ApplicationConfig, DiscoveryService } from '@nestjs/core';
import { Injector } from '@nestjs/core/injector/injector.js';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import { RouterExplorer } from '@nestjs/core/router/router-explorer.js';
import { RpcContextCreator } from '@nestjs/microservices/context/rpc-context-creator.js';

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
 * The three patched methods are internal to Nest: the spec next to this file fails if an upgrade
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
  if (
    typeof http.createCallbackProxy !== 'function' ||
    typeof rpc.create !== 'function' ||
    typeof injector.loadPerContext !== 'function'
  )
    throw new Error(
      'Nest internals changed: RouterExplorer.createCallbackProxy, RpcContextCreator.create or Injector.loadPerContext is gone',
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
    const tree = durableTree(args);
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
}

interface ContextIdLike {
  getParent?: (info: { token: unknown; isTreeDurable: boolean }) => object;
}

/** The wrapper id and durable tree of a loadPerContext call for a shareable controller, if it is one. */
function durableTree(args: unknown[]): [string, object] | undefined {
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
