import type { ContextId, ContextIdResolver, ContextIdStrategy, HostComponentInfo } from '@nestjs/core';
import { ContextIdFactory } from '@nestjs/core';
import type { BundleRegistry } from './bundle-registry.service.js';
import { extractTenancy } from './tenancy-extractor.js';
import type { TenantCtx } from '../core/tenant-ctx.js';

/**
 * Durable DI sub-trees per tenant/env/team: request-scoped providers that depend on TenantCtx
 * are built once per tenant, not per message. Only tenancies the bundle declares get a sub-tree;
 * anything else shares one "unresolved" tree and is refused by TenantGuard, so garbage ids in
 * URLs cannot grow the DI container.
 */
export class TenantContextIdStrategy implements ContextIdStrategy {
  private readonly trees = new WeakMap<TenantCtx, ContextId>();
  private readonly unresolved: ContextId = ContextIdFactory.create();

  constructor(private readonly registry: BundleRegistry) {}

  /**
   * The durable sub-tree a request belongs to, for a declared tenancy (else undefined): what
   * `attach` resolves durable providers to, without a per-request context id.
   */
  durableTree(request: unknown): ContextId | undefined {
    const coords = extractTenancy(request);
    const tenant = coords ? this.registry.tryResolveTenant(coords) : undefined;
    return tenant ? this.treeOf(tenant) : undefined;
  }

  private treeOf(tenant: TenantCtx): ContextId {
    let tree = this.trees.get(tenant);
    if (!tree) {
      tree = ContextIdFactory.create();
      this.trees.set(tenant, tree);
    }
    return tree;
  }

  attach(contextId: ContextId, request: unknown): ContextIdResolver {
    const coords = extractTenancy(request);
    const tenant = coords ? this.registry.tryResolveTenant(coords) : undefined;
    if (!tenant) {
      return {
        resolve: (info: HostComponentInfo) => (info.isTreeDurable ? this.unresolved : contextId),
        payload: {},
      };
    }
    const durable = this.treeOf(tenant);
    return {
      resolve: (info: HostComponentInfo) => (info.isTreeDurable ? durable : contextId),
      payload: tenant,
    };
  }
}
