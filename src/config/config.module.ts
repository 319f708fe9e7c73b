import { Global, Module, type DynamicModule } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { RunnerConfig, validateRunnerConfig } from './runner-config.js';

/** Environment + overrides (tests, CLI flags; they win), validated. */
export function resolveRunnerConfig(
  overrides: Record<string, string | number | undefined> = {},
): RunnerConfig {
  const merged: Record<string, unknown> = { ...process.env };
  for (const [k, v] of Object.entries(overrides)) if (v !== undefined) merged[k] = String(v);
  return validateRunnerConfig(merged);
}

/**
 * A bundle built in memory (`greentic-runner start --pack`, tests), which TenancyModule serves
 * instead of loading the file GREENTIC_BUNDLE names. It is configuration, so it travels with the
 * config; its type belongs to tenancy, above this layer, which checks the value it reads.
 */
export const IN_MEMORY_BUNDLE = Symbol('IN_MEMORY_BUNDLE');

export interface RunnerConfigModuleOptions {
  /** A tenancy `Bundle` given in memory (see IN_MEMORY_BUNDLE). */
  bundle?: object;
}

/**
 * `@nestjs/config` with the validated RunnerConfig class also injectable by type. Global, with
 * logging, because every module reads its configuration; the other modules import what they use.
 */
@Global()
@Module({})
export class RunnerConfigModule {
  static forRoot(config: RunnerConfig, opts: RunnerConfigModuleOptions = {}): DynamicModule {
    return {
      module: RunnerConfigModule,
      imports: [
        ConfigModule.forRoot({
          isGlobal: true,
          ignoreEnvFile: true,
          skipProcessEnv: true,
          load: [() => ({ ...config })],
        }),
      ],
      providers: [
        { provide: RunnerConfig, useValue: config },
        ...(opts.bundle ? [{ provide: IN_MEMORY_BUNDLE, useValue: opts.bundle }] : []),
      ],
      exports: [RunnerConfig, ...(opts.bundle ? [IN_MEMORY_BUNDLE] : [])],
    };
  }
}
