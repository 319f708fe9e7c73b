import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AdminModule } from './admin/admin.module.js';
import { GreenticExceptionFilter } from './messaging/greentic-exception.filter.js';
import { resolveRunnerConfig, RunnerConfigModule } from './config/config.module.js';
import { FlowsModule, type FlowRunnerDecorator } from './flows/flows.module.js';
import { HealthModule } from './health/health.module.js';
import { MessagingModule } from './messaging/messaging.module.js';
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
import type { Bundle } from './tenancy/bundle.types.js';
import { TenancyModule } from './tenancy/tenancy.module.js';
import { WasmModule } from './wasm/wasm.module.js';

export interface AppModuleOptions {
  /** Config values that win over the environment (tests, CLI). */
  config?: Record<string, string | number | undefined>;
  /** Extra modules, e.g. custom messaging providers. */
  imports?: DynamicModule['imports'];
  /** A bundle built in memory (`greentic-runner start --pack`); without it, GREENTIC_BUNDLE is loaded. */
  bundle?: Bundle;
  /** Wraps the flow runner inside telemetry's wrapper (`greentic-runner chat --trace` reads each run's trace). */
  decorateFlowRunner?: FlowRunnerDecorator;
}

@Module({})
export class AppModule {
  static forRoot(opts: AppModuleOptions = {}): DynamicModule {
    const config = resolveRunnerConfig(opts.config);
    const traceMessageText =
      config.GREENTIC_TRACE_MESSAGE_TEXT === 'true' || (telemetry()?.settings.traceMessageText ?? false);
    return {
      module: AppModule,
      imports: [
        RunnerConfigModule.forRoot(config),
        LoggingModule,
        TelemetryModule,
        TenancyModule.forRoot(opts.bundle),
        SecretsModule,
        // The seams carry spans and metrics: each is wrapped where its module provides it.
        SessionsModule.forRoot({ decorate: (store) => instrumentSessionStore(store) }),
        WasmModule.forRoot({ decorate: (runtime) => instrumentComponentRuntime(runtime) }),
        PacksModule,
        RateLimitModule,
        MessagingModule.forRoot({
          flows: FlowsModule.forRoot({
            decorate: (runner) =>
              instrumentFlowRunner(opts.decorateFlowRunner?.(runner) ?? runner, {
                nodeSpans: config.GREENTIC_TRACE_NODES === 'true',
              }),
          }),
          decorateBus: (bus) => instrumentBus(bus, { traceMessageText }),
        }),
        SchedulingModule,
        HealthModule,
        AdminModule,
        ...(opts.imports ?? []),
      ],
      providers: [{ provide: APP_FILTER, useClass: GreenticExceptionFilter }],
    };
  }
}
