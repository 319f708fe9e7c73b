import { Injectable, Module, type DynamicModule, type Type } from '@nestjs/common';
import { DiscoveryModule, DiscoveryService, NestFactory, Reflector } from '@nestjs/core';
import { resolveRunnerConfig, RunnerConfigModule } from '../../config/config.module.js';
import { PackRegistry, type PackStatus } from '../../packs/pack-registry.service.js';
import {
  BUILTIN_PROVIDER_IDS,
  unknownChannelProviders,
} from '../../messaging/providers/channel-providers.js';
import { GREENTIC_PROVIDER } from '../../messaging/providers/messaging-provider.js';
import { PacksModule } from '../../packs/packs.module.js';
import { unresolvedSecretRefs } from '../../secrets/channel-secret-refs.js';
import { SecretsModule } from '../../secrets/secrets.module.js';
import { SecretsService } from '../../secrets/secrets.service.js';
import { TenancyModule } from '../../tenancy/tenancy.module.js';
import { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import { WasmModule } from '../../wasm/wasm.module.js';
import { loadBundle } from '../../tenancy/bundle.loader.js';
import { importProviderModules } from '../../messaging/providers/provider-modules.js';

export interface ValidationReport {
  ok: boolean;
  bundle: string;
  tenants: { id: string; channels: string[]; secretsBackend: string }[];
  packs: PackStatus[];
  /** The providers channels may name: the built-in ones and those of the modules given. */
  providers: string[];
  /** Mistakes that would fail at request time (unknown provider, unresolved secret). */
  problems: string[];
  /** What could not be checked (a secrets backend that did not answer). */
  warnings: string[];
  error?: string;
}

export interface ValidateOptions {
  /** Custom provider modules the runner will be started with (`startApp({ imports })`). */
  providerModules?: Type[];
}

/**
 * The `@GreenticProvider` ids of the given modules, read from the classes: nothing here needs
 * a provider instance, only what it registers as.
 */
@Injectable()
class ProviderCatalog {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly reflector: Reflector,
  ) {}

  ids(): string[] {
    const ids = new Set<string>();
    for (const { metatype } of this.discovery.getProviders()) {
      if (typeof metatype !== 'function') continue;
      const id = this.reflector.get<string | undefined>(GREENTIC_PROVIDER, metatype as Type);
      if (id) ids.add(id);
    }
    return [...ids];
  }
}

@Module({})
class ValidateModule {
  static forRoot(bundle: string, providerModules: Type[] = []): DynamicModule {
    // No bus, no session store, no HTTP: only what loading a bundle and its packs needs. Watching
    // is off so the context closes cleanly.
    const config = resolveRunnerConfig({
      GREENTIC_BUNDLE: bundle,
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      LOG_LEVEL: 'silent',
    });
    const wasm = WasmModule.forRoot();
    return {
      module: ValidateModule,
      imports: [
        RunnerConfigModule.forRoot(config),
        TenancyModule,
        wasm,
        PacksModule.forRoot({ wasm }),
        SecretsModule,
        DiscoveryModule,
        ...providerModules,
      ],
      providers: [ProviderCatalog],
    };
  }
}

/**
 * Checks a bundle the way start-up does, without starting: the bundle schema, every tenant's
 * secrets binding, every pack (source, signature policy, components prepared, flows validated),
 * every channel's binding to a flow and to a registered provider (the built-in ones and those of
 * `providerModules`), and every channel's `secret_refs` (read through the tenant's backend;
 * a backend that cannot be reached from here is a warning, not a failure).
 */
export async function validateBundle(bundle: string, opts: ValidateOptions = {}): Promise<ValidationReport> {
  let ctx: Awaited<ReturnType<typeof NestFactory.createApplicationContext>> | undefined;
  try {
    // The bundle's own `provider_modules`, as the runner loads them, besides --provider-module.
    const modules = [...(opts.providerModules ?? []), ...(await bundleProviderModules(bundle))];
    ctx = await NestFactory.createApplicationContext(ValidateModule.forRoot(bundle, modules), {
      logger: false,
      abortOnError: false,
    });
    const registry = ctx.get(BundleRegistry);
    const packs = ctx.get(PackRegistry);
    const providers = [...new Set([...BUILTIN_PROVIDER_IDS, ...ctx.get(ProviderCatalog).ids()])].sort();
    const problems = unknownChannelProviders(registry.bundle, providers).map((u) => u.message);
    const warnings: string[] = [];
    for (const u of await unresolvedSecretRefs(registry, ctx.get(SecretsService))) {
      (u.reason === 'missing' ? problems : warnings).push(u.message);
    }
    const tenants = registry.tenants().map((t) => ({
      id: t.id,
      secretsBackend: t.secrets.backend,
      channels: [...t.envs.values()].flatMap((e) =>
        [...e.teams.values()].flatMap((tm) =>
          [...tm.channels.values()].map(
            (c) =>
              `${e.id}/${tm.id}/${c.id} → ${c.pack}:${c.flow}${c.delivery === 'at_most_once' ? ' (delivery: at_most_once)' : ''}`,
          ),
        ),
      ),
    }));
    const base = { bundle: registry.bundle.file, tenants, providers, problems, warnings };
    try {
      await packs.loadAll();
      return { ok: problems.length === 0, ...base, packs: packs.status() };
    } catch (e) {
      return { ok: false, ...base, packs: packs.status(), error: (e as Error).message };
    }
  } catch (e) {
    return {
      ok: false,
      bundle,
      tenants: [],
      packs: [],
      providers: [],
      problems: [],
      warnings: [],
      error: (e as Error).message,
    };
  } finally {
    await ctx?.close().catch(() => undefined);
  }
}

/**
 * The provider modules a bundle lists (`provider_modules`). A bundle that does not load is left to
 * the validation itself, which reports it; a module that does not import is a ConfigError naming it.
 */
async function bundleProviderModules(file: string): Promise<Type[]> {
  let b: ReturnType<typeof loadBundle>;
  try {
    b = loadBundle(file);
  } catch {
    return [];
  }
  const specs = b.providerModules ?? [];
  return specs.length > 0 ? importProviderModules(specs, b.dir, `bundle ${b.file}`) : [];
}
