import { Global, Module } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { MetricService } from 'nestjs-otel';
import { RunnerConfig } from '../config/runner-config.js';
import { SecretsService } from '../secrets/secrets.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../core/component-runtime.js';
import { JcoComponentRuntime } from './jco-component.runtime.js';
import { createPooledRuntime } from './pool/pooled-runtime.factory.js';
import { TENANT_COMPONENT_DIGESTS, type TenantComponentDigests } from './tenant-component-digests.js';

/**
 * Provides the ComponentRuntime (COMPONENT_RUNTIME): the worker pool by default, the foundation's
 * in-process runtime with `GREENTIC_COMPONENT_RUNTIME=inprocess`. Global so that FlowsModule and
 * PacksModule inject it without importing this module. Every dependency is optional, so the module
 * also works on its own (tests, the CLI).
 */
@Global()
@Module({
  providers: [
    {
      provide: COMPONENT_RUNTIME,
      inject: [
        ModuleRef,
        { token: RunnerConfig, optional: true },
        { token: SecretsService, optional: true },
        { token: BundleRegistry, optional: true },
        { token: MetricService, optional: true },
      ],
      useFactory: (
        moduleRef: ModuleRef,
        config?: RunnerConfig,
        secrets?: SecretsService,
        bundles?: BundleRegistry,
        metrics?: MetricService,
      ): ComponentRuntime =>
        config?.GREENTIC_COMPONENT_RUNTIME === 'inprocess'
          ? new JcoComponentRuntime({ cacheDir: config.GREENTIC_CACHE_DIR })
          : createPooledRuntime({
              config,
              secrets,
              bundles,
              metrics,
              // PackRegistry needs this runtime, so it is looked up when the pool warms, not injected.
              tenantComponents: (tenantId) => tenantDigests(moduleRef, tenantId),
            }),
    },
  ],
  exports: [COMPONENT_RUNTIME],
})
export class WasmModule {}

/** Digests of the components in a tenant's current packs (empty without PacksModule). */
function tenantDigests(moduleRef: ModuleRef, tenantId: string): string[] {
  let source: TenantComponentDigests;
  try {
    source = moduleRef.get<TenantComponentDigests>(TENANT_COMPONENT_DIGESTS, { strict: false });
  } catch {
    return [];
  }
  return source.componentDigests(tenantId);
}
