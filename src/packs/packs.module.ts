import path from 'node:path';
import { Module, type DynamicModule } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RunnerConfig } from '../config/runner-config.js';
import { DEFAULT_ARCHIVE_LIMITS } from './format/constants.js';
import { PACK_SOURCES } from './pack-source.js';
import { PackRegistry } from './pack-registry.service.js';
import { PackCache } from './resolvers/pack-cache.js';
import { PackResolverRegistry } from './resolvers/pack-resolver.registry.js';
import { GtpackPackSource } from './sources/gtpack.source.js';
import { PackTrustService } from './verify/pack-trust.service.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { TENANT_COMPONENT_DIGESTS } from '../wasm/tenant-component-digests.js';

export interface PacksModuleOptions {
  /** The application's `WasmModule.forRoot(...)`: PackRegistry prepares components on its runtime. */
  wasm: DynamicModule;
}

/**
 * Packs by tenant (PackRegistry) and where they come from. The application builds
 * `PacksModule.forRoot({ wasm })` once and hands that object to the modules that import it.
 */
@Module({
  imports: [DiscoveryModule, TenancyModule],
  providers: [
    PackTrustService,
    PackResolverRegistry,
    {
      provide: PACK_SOURCES,
      inject: [RunnerConfig, PackTrustService, PackResolverRegistry],
      useFactory: (config: RunnerConfig, trust: PackTrustService, resolvers: PackResolverRegistry) => [
        new GtpackPackSource({
          resolvers: () => resolvers.all(),
          policy: () => trust.policy(),
          cache: new PackCache(path.resolve(config.GREENTIC_CACHE_DIR, 'packs')),
          limits: DEFAULT_ARCHIVE_LIMITS,
        }),
      ],
    },
    PackRegistry,
    // The worker pool warms a tenant's workers with its packs' components.
    { provide: TENANT_COMPONENT_DIGESTS, useExisting: PackRegistry },
  ],
  exports: [PackRegistry, TENANT_COMPONENT_DIGESTS, PACK_SOURCES, PackTrustService, PackResolverRegistry],
})
export class PacksModule {
  static forRoot(opts: PacksModuleOptions): DynamicModule {
    return { module: PacksModule, imports: [opts.wasm] };
  }
}
