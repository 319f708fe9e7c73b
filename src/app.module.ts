import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { AdminModule } from './admin/admin.module.js';
import { GreenticExceptionFilter } from './messaging/greentic-exception.filter.js';
import { resolveRunnerConfig, RunnerConfigModule } from './config/config.module.js';
import { FlowsModule } from './flows/flows.module.js';
import { HealthModule } from './health/health.module.js';
import { MessagingModule } from './messaging/messaging.module.js';
import { PacksModule } from './packs/packs.module.js';
import { RateLimitModule } from './ratelimit/ratelimit.module.js';
import { SchedulingModule } from './scheduling/scheduling.module.js';
import { SecretsModule } from './secrets/secrets.module.js';
import { SessionsModule } from './sessions/sessions.module.js';
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
}

@Module({})
export class AppModule {
  static forRoot(opts: AppModuleOptions = {}): DynamicModule {
    const config = resolveRunnerConfig(opts.config);
    return {
      module: AppModule,
      imports: [
        RunnerConfigModule.forRoot(config),
        TelemetryModule,
        TenancyModule.forRoot(config.GREENTIC_TENANCY_SCOPE, opts.bundle),
        SecretsModule,
        SessionsModule,
        WasmModule,
        PacksModule,
        FlowsModule,
        RateLimitModule,
        MessagingModule,
        SchedulingModule,
        HealthModule,
        AdminModule,
        ...(opts.imports ?? []),
      ],
      providers: [{ provide: APP_FILTER, useClass: GreenticExceptionFilter }],
    };
  }
}
