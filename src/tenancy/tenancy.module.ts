import { Module, Scope, type Provider } from '@nestjs/common';
import { REQUEST } from '@nestjs/core';
import { IN_MEMORY_BUNDLE } from '../config/config.module.js';
import { RunnerConfig } from '../config/runner-config.js';
import { loadBundle } from './bundle.loader.js';
import type { Bundle } from './bundle.types.js';
import { BundleRegistry } from './bundle-registry.service.js';
import { TENANT_CTX, type TenantCtx } from '../core/tenant-ctx.js';
import { TenantGuard } from './tenant.guard.js';
import { TenantScopes } from './tenant-scopes.service.js';

/*
 * Tenancy, and how a service instance is bound to one tenant (issue #19):
 *
 * - TenantGuard resolves a hop's tenancy once (route, header or bus subject → BundleRegistry) and
 *   leaves it on the request or RPC context as a typed `tenancy` (ResolvedTenancy, read with
 *   `tenancyOf`): the TenantCtx, the tenant's binding, the channel, and the tenant's TenantScope.
 * - TENANT_CTX is request-scoped and durable: it is whatever REQUEST holds in the tenant's sub-tree.
 *   TenantScopes makes one ContextId per TenantCtx (ContextIdFactory.create), registers the
 *   TenantCtx as that tree's REQUEST (ModuleRef.registerRequestByContextId) and resolves
 *   tenant-bound services in it (ModuleRef.resolve(type, contextId, { strict: false })), once per
 *   tenant and type; after that a message costs a Map lookup.
 * - Tenant-bound services (TenantSessions, TenantSecrets, TenantComponents, MessageProcessor)
 *   inject TENANT_CTX and take no tenant parameter, so an instance built for A cannot reach B.
 * - Controllers stay singletons and inject nothing request-scoped: Nest builds their handler
 *   pipelines once, and they take the tenant's instances from `tenancyOf(req).scope`.
 * - Per-message facts travel in a MessageCtx passed down the call, never in these instances.
 */
const tenantCtxProvider: Provider = {
  provide: TENANT_CTX,
  scope: Scope.REQUEST,
  durable: true,
  inject: [REQUEST],
  useFactory: (request: unknown): TenantCtx => {
    const t = request as Partial<TenantCtx> | undefined;
    if (typeof t?.tenantId !== 'string' || typeof t.envId !== 'string')
      throw new Error(
        'TENANT_CTX outside a tenant scope: resolve tenant-bound services through TenantScopes',
      );
    return t as TenantCtx;
  },
};

/** The bundle given in memory (RunnerConfigModule's `bundle`), else the file GREENTIC_BUNDLE names. */
const bundleRegistryProvider: Provider = {
  provide: BundleRegistry,
  inject: [
    { token: IN_MEMORY_BUNDLE, optional: true },
    { token: RunnerConfig, optional: true },
  ],
  useFactory: (bundle?: Bundle, config?: RunnerConfig): BundleRegistry => {
    if (bundle) return new BundleRegistry(bundle);
    if (!config)
      throw new Error(
        'TenancyModule needs RunnerConfigModule.forRoot(config) (GREENTIC_BUNDLE) or its `bundle` option',
      );
    return new BundleRegistry(loadBundle(config.GREENTIC_BUNDLE));
  },
};

/**
 * Not global: the modules that resolve tenants or inject TENANT_CTX import it. It holds no options
 * (the in-memory bundle comes with the config), so every import is the same single module.
 */
@Module({
  providers: [bundleRegistryProvider, TenantGuard, TenantScopes, tenantCtxProvider],
  exports: [BundleRegistry, TenantGuard, TenantScopes, TENANT_CTX],
})
export class TenancyModule {}
