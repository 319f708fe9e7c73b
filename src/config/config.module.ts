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
 * `@nestjs/config` with the validated RunnerConfig class also injectable by type.
 */
@Global()
@Module({})
export class RunnerConfigModule {
  static forRoot(config: RunnerConfig): DynamicModule {
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
      providers: [{ provide: RunnerConfig, useValue: config }],
      exports: [RunnerConfig],
    };
  }
}
