import { Module, type DynamicModule } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { MetricService } from 'nestjs-otel';
import { decorated } from '../common/decorated-provider.js';
import { RunnerConfig } from '../config/runner-config.js';
import { SecretsModule } from '../secrets/secrets.module.js';
import { SecretsService } from '../secrets/secrets.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../core/component-runtime.js';
import { JcoComponentRuntime } from './jco-component.runtime.js';
import { createPooledRuntime } from './pool/pooled-runtime.factory.js';
import { TENANT_COMPONENT_DIGESTS, type TenantComponentDigests } from './tenant-component-digests.js';
import { TenantComponents } from './tenant-components.service.js';

/**
 * Provides the ComponentRuntime (COMPONENT_RUNTIME): the worker pool by default, the foundation's
 * in-process runtime with `GREENTIC_COMPONENT_RUNTIME=inprocess`, and the tenant-bound
 * TenantComponents. The application builds `WasmModule.forRoot(...)` once and hands that object to
 * the modules that import it (packs, messaging, health), so they share one runtime.
 */
export type ComponentRuntimeDecorator = (runtime: ComponentRuntime) => ComponentRuntime;

export interface WasmModuleOptions {
  /** Wraps the runtime where it is provided (the application passes telemetry's instrumentation). */
  decorate?: ComponentRuntimeDecorator;
}

const DECORATE_RUNTIME = Symbol('WasmModule.decorate');

@Module({
  imports: [SecretsModule, TenancyModule],
  providers: [
    // nestjs-otel's instruments for the pool's own metrics (stateless; one per name process-wide).
    MetricService,
    {
      provide: COMPONENT_RUNTIME,
      inject: [
        ModuleRef,
        { token: RunnerConfig, optional: true },
        { token: SecretsService, optional: true },
        { token: BundleRegistry, optional: true },
        { token: MetricService, optional: true },
        { token: DECORATE_RUNTIME, optional: true },
      ],
      useFactory: (
        moduleRef: ModuleRef,
        config?: RunnerConfig,
        secrets?: SecretsService,
        bundles?: BundleRegistry,
        metrics?: MetricService,
        decorate?: ComponentRuntimeDecorator,
      ): ComponentRuntime => {
        const runtime =
          config?.GREENTIC_COMPONENT_RUNTIME === 'inprocess'
            ? new JcoComponentRuntime({ cacheDir: config.GREENTIC_CACHE_DIR })
            : createPooledRuntime({
                config,
                secrets,
                bundles,
                metrics,
                // PackRegistry needs this runtime, so it is looked up when the pool warms, not injected.
                tenantComponents: (tenantId) => tenantDigests(moduleRef, tenantId),
              });
        return decorated(runtime, decorate);
      },
    },
    TenantComponents,
  ],
  exports: [COMPONENT_RUNTIME, TenantComponents],
})
export class WasmModule {
  /** The module with its COMPONENT_RUNTIME wrapped by `decorate`. */
  static forRoot(opts: WasmModuleOptions = {}): DynamicModule {
    return {
      module: WasmModule,
      providers: opts.decorate ? [{ provide: DECORATE_RUNTIME, useValue: opts.decorate }] : [],
    };
  }
}

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
