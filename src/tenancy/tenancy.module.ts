import { Global, Module, Scope, type DynamicModule, type OnModuleInit, type Provider } from '@nestjs/common';
import { ContextIdFactory, DiscoveryModule, REQUEST } from '@nestjs/core';
import { RunnerConfig } from '../config/runner-config.js';
import { loadBundle } from './bundle.loader.js';
import type { Bundle } from './bundle.types.js';
import { DurableHandlerCache, installDurableHandlerCache } from './durable-handler-cache.js';
import { BundleRegistry } from './bundle-registry.service.js';
import { TenantContextIdStrategy } from './tenant-context-id.strategy.js';
import { TENANT_CTX, UNSCOPED_TENANT, type TenantCtx } from '../core/tenant-ctx.js';
import { TenantGuard } from './tenant.guard.js';
import { extractTenancy } from './tenancy-extractor.js';

/**
 * TenantCtx is request-scoped but durable: one instance per tenant/env/team sub-tree
 * (TenantContextIdStrategy). The other scopes exist to measure what scoping costs.
 */
function tenantCtxProvider(scope: RunnerConfig['GREENTIC_TENANCY_SCOPE']): Provider {
  if (scope === 'singleton') return { provide: TENANT_CTX, useValue: UNSCOPED_TENANT };
  return {
    provide: TENANT_CTX,
    scope: Scope.REQUEST,
    durable: scope !== 'request',
    inject: [REQUEST, BundleRegistry],
    // Durable trees get the strategy's payload; plain request scope gets the request itself, read
    // like the guard reads it. Either way, hand out the registry's one frozen TenantCtx.
    useFactory: (p: Partial<TenantCtx>, registry: BundleRegistry): TenantCtx | undefined => {
      if (p.tenantId && p.envId)
        return registry.tryResolveTenant({ tenant: p.tenantId, env: p.envId, team: p.teamId });
      const c = extractTenancy(p);
      return c ? registry.tryResolveTenant(c) : undefined;
    },
  };
}

/** The bundle given in memory, else the file GREENTIC_BUNDLE names. */
function bundleRegistryProvider(bundle: Bundle | undefined): Provider {
  if (bundle) return { provide: BundleRegistry, useValue: new BundleRegistry(bundle) };
  return {
    provide: BundleRegistry,
    inject: [RunnerConfig],
    useFactory: (c: RunnerConfig) => new BundleRegistry(loadBundle(c.GREENTIC_BUNDLE)),
  };
}

@Global()
@Module({
  providers: [TenantGuard],
  exports: [TenantGuard],
})
export class TenancyModule implements OnModuleInit {
  static forRoot(scope: RunnerConfig['GREENTIC_TENANCY_SCOPE'] = 'durable', bundle?: Bundle): DynamicModule {
    const provider = tenantCtxProvider(scope);
    const registry = bundleRegistryProvider(bundle);
    // Durable trees resolve to the same controller and enhancers for every message of a tenant:
    // their handler pipelines are built once per tenant (see DurableHandlerCache).
    if (scope === 'durable') {
      // Before the application exists: Nest builds its per-request handlers while it initialises.
      installDurableHandlerCache();
      return {
        module: TenancyModule,
        imports: [DiscoveryModule],
        providers: [registry, provider, DurableHandlerCache],
        exports: [BundleRegistry, TENANT_CTX],
      };
    }
    return {
      module: TenancyModule,
      providers: [registry, provider],
      exports: [BundleRegistry, TENANT_CTX],
    };
  }

  constructor(private readonly registry: BundleRegistry) {}

  onModuleInit(): void {
    ContextIdFactory.apply(new TenantContextIdStrategy(this.registry));
  }
}
