import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AdminModule } from './admin/admin.module.js';
import { GreenticExceptionFilter } from './messaging/greentic-exception.filter.js';
import { resolveRunnerConfig, RunnerConfigModule } from './config/config.module.js';
import { FlowsModule, type FlowRunnerDecorator } from './flows/flows.module.js';
import { HealthModule } from './health/health.module.js';
import { MessagingModule } from './messaging/messaging.module.js';
import { importProviderModules } from './messaging/providers/provider-modules.js';
import { ProvidersModule } from './messaging/providers/providers.module.js';
import { PacksModule } from './packs/packs.module.js';
import { RateLimitModule } from './ratelimit/ratelimit.module.js';
import { SchedulingModule } from './scheduling/scheduling.module.js';
import { SecretsModule } from './secrets/secrets.module.js';
import { SessionsModule } from './sessions/sessions.module.js';
import { instrumentBus } from './telemetry/instrumented-bus.js';
import { instrumentComponentRuntime } from './telemetry/instrumented-component-runtime.js';
import { instrumentFlowRunner } from './telemetry/instrumented-flow-runner.js';
import { instrumentSessionStore } from './telemetry/instrumented-session-store.js';
import { LoggingModule } from './telemetry/logging.module.js';
import { telemetry } from './telemetry/otel.js';
import { TelemetryModule } from './telemetry/telemetry.module.js';
import { loadBundle } from './tenancy/bundle.loader.js';
import type { Bundle } from './tenancy/bundle.types.js';
import { TenancyModule } from './tenancy/tenancy.module.js';
import { WasmModule } from './wasm/wasm.module.js';

export interface AppModuleOptions {
  /** Config values that win over the environment (tests, CLI). */
  config?: Record<string, string | number | undefined>;
  /**
   * Extra modules, e.g. custom messaging providers. A module that needs the runner's own modules
   * (the bus and ingress, sessions, ...) passes a function and imports the objects it is given.
   */
  imports?: DynamicModule['imports'] | ((modules: RunnerModules) => DynamicModule['imports']);
  /** A bundle built in memory (`greentic-runner start --pack`); without it, GREENTIC_BUNDLE is loaded. */
  bundle?: Bundle;
  /** Wraps the flow runner inside telemetry's wrapper (`greentic-runner chat --trace` reads each run's trace). */
  decorateFlowRunner?: FlowRunnerDecorator;
}

/**
 * The runner's modules that carry options, each built once: a dynamic module is one instance per
 * object (Nest's default 'reference' module ids), so every module importing the same object shares
 * its providers. Only config and logging are global; every other dependency is an import.
 */
export interface RunnerModules {
  sessions: DynamicModule;
  wasm: DynamicModule;
  packs: DynamicModule;
  flows: DynamicModule;
  messaging: DynamicModule;
}

/** Holds the modules a bundle's `provider_modules` names. */
@Module({})
class BundleProviderModules {}

/**
 * The bundle's `provider_modules`, imported before the container is built (Nest awaits a promised
 * import), so their providers are registered like any other. The bundle file is read here and again
 * by TenancyModule: a start-up cost of one small YAML parse, and the same error either way.
 */
async function bundleProviderModules(bundle: Bundle | undefined, file: string): Promise<DynamicModule> {
  const b = bundle ?? loadBundle(file);
  const specs = b.providerModules ?? [];
  const imports = specs.length > 0 ? await importProviderModules(specs, b.dir, `bundle ${b.file}`) : [];
  return { module: BundleProviderModules, imports };
}

@Module({})
export class AppModule {
  static forRoot(opts: AppModuleOptions = {}): DynamicModule {
    const config = resolveRunnerConfig(opts.config);
    const traceMessageText =
      config.GREENTIC_TRACE_MESSAGE_TEXT === 'true' || (telemetry()?.settings.traceMessageText ?? false);
    // The seams carry spans and metrics: each is wrapped where its module provides it.
    const sessions = SessionsModule.forRoot({ decorate: (store) => instrumentSessionStore(store) });
    const wasm = WasmModule.forRoot({ decorate: (runtime) => instrumentComponentRuntime(runtime) });
    const packs = PacksModule.forRoot({ wasm });
    const flows = FlowsModule.forRoot({
      decorate: (runner) =>
        instrumentFlowRunner(opts.decorateFlowRunner?.(runner) ?? runner, {
          nodeSpans: config.GREENTIC_TRACE_NODES === 'true',
        }),
    });
    const messaging = MessagingModule.forRoot({
      sessions,
      wasm,
      packs,
      flows,
      decorateBus: (bus) => instrumentBus(bus, { traceMessageText }),
    });
    const modules: RunnerModules = { sessions, wasm, packs, flows, messaging };
    const extra = typeof opts.imports === 'function' ? opts.imports(modules) : opts.imports;
    const providerModules = bundleProviderModules(opts.bundle, config.GREENTIC_BUNDLE);
    // Nest awaits it while scanning, a few ticks from now: a failure must not count as unhandled meanwhile.
    providerModules.catch(() => undefined);
    return {
      module: AppModule,
      imports: [
        RunnerConfigModule.forRoot(config, { bundle: opts.bundle }),
        LoggingModule,
        TelemetryModule,
        // GreenticExceptionFilter (below) reads BundleRegistry.
        TenancyModule,
        SecretsModule,
        sessions,
        wasm,
        packs,
        RateLimitModule,
        messaging,
        ProvidersModule.forRoot({ messaging, sessions }),
        SchedulingModule.forRoot(messaging),
        HealthModule.forRoot({ messaging, sessions, wasm, packs }),
        AdminModule.forRoot({ messaging, sessions, packs }),
        providerModules,
        ...(extra ?? []),
      ],
      providers: [{ provide: APP_FILTER, useClass: GreenticExceptionFilter }],
    };
  }
}
