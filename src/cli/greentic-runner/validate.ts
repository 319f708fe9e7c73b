import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { resolveRunnerConfig, RunnerConfigModule } from '../../config/config.module.js';
import { PackRegistry, type PackStatus } from '../../packs/pack-registry.service.js';
import { PacksModule } from '../../packs/packs.module.js';
import { SecretsModule } from '../../secrets/secrets.module.js';
import { TenancyModule } from '../../tenancy/tenancy.module.js';
import { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import { WasmModule } from '../../wasm/wasm.module.js';

export interface ValidationReport {
  ok: boolean;
  bundle: string;
  tenants: { id: string; channels: string[]; secretsBackend: string }[];
  packs: PackStatus[];
  error?: string;
}

@Module({})
class ValidateModule {
  static forRoot(bundle: string): DynamicModule {
    // No bus, no session store, no HTTP: only what loading a bundle and its packs needs. Watching
    // is off so the context closes cleanly.
    const config = resolveRunnerConfig({
      GREENTIC_BUNDLE: bundle,
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      LOG_LEVEL: 'silent',
    });
    return {
      module: ValidateModule,
      imports: [
        RunnerConfigModule.forRoot(config),
        TenancyModule.forRoot('singleton'),
        WasmModule,
        PacksModule,
        SecretsModule,
      ],
    };
  }
}

/**
 * Checks a bundle the way start-up does, without starting: the bundle schema, every tenant's
 * secrets binding (options only; no secret is read), every pack (source, signature policy,
 * components prepared, flows validated) and every channel's binding to a flow.
 */
export async function validateBundle(bundle: string): Promise<ValidationReport> {
  let ctx: Awaited<ReturnType<typeof NestFactory.createApplicationContext>> | undefined;
  try {
    ctx = await NestFactory.createApplicationContext(ValidateModule.forRoot(bundle), {
      logger: false,
      abortOnError: false,
    });
    const registry = ctx.get(BundleRegistry);
    const packs = ctx.get(PackRegistry);
    const tenants = registry.tenants().map((t) => ({
      id: t.id,
      secretsBackend: t.secrets.backend,
      channels: [...t.envs.values()].flatMap((e) =>
        [...e.teams.values()].flatMap((tm) =>
          [...tm.channels.values()].map((c) => `${e.id}/${tm.id}/${c.id} → ${c.pack}:${c.flow}`),
        ),
      ),
    }));
    try {
      await packs.loadAll();
      return { ok: true, bundle: registry.bundle.file, tenants, packs: packs.status() };
    } catch (e) {
      return {
        ok: false,
        bundle: registry.bundle.file,
        tenants,
        packs: packs.status(),
        error: (e as Error).message,
      };
    }
  } catch (e) {
    return { ok: false, bundle, tenants: [], packs: [], error: (e as Error).message };
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}
