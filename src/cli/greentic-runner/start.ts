import { Logger } from '@nestjs/common';
import { resolveRunnerConfig } from '../../config/config.module.js';
import { unknownGreenticVariables, type RunnerConfig } from '../../config/runner-config.js';
import { describeStartupFailure } from './startup-failure.js';

/** Starts the runner and hands SIGTERM/SIGINT to the graceful shutdown (drain, close, exit 0). */
export async function startRunner(config: Record<string, string | undefined> = {}): Promise<void> {
  // Loaded here, not at the top: a bad variable is reported before the whole app is loaded.
  const [{ startApp }, { installGracefulShutdown }] = await Promise.all([
    import('../../bootstrap.js'),
    import('../../health/graceful-shutdown.js'),
  ]);
  const { app, url } = await startApp({ config });
  installGracefulShutdown(app);
  new Logger('Main').log({ url }, `greentic runner listening on ${url}`);
}

export interface StartOptions {
  env?: NodeJS.ProcessEnv;
  /** Where the warning and failure lines go (stderr). */
  err?: (line: string) => void;
  start?: (config: Record<string, string | undefined>) => Promise<void>;
}

/**
 * The entry points' start: warns about unknown `GREENTIC_*` variables, starts, and turns a
 * failure into the lines and exit code of describeStartupFailure (0 once listening). The stack
 * of a failure is printed only at LOG_LEVEL debug or trace.
 */
export async function runStart(
  config: Record<string, string | undefined> = {},
  opts: StartOptions = {},
): Promise<number> {
  const env = opts.env ?? process.env;
  const err = opts.err ?? ((l: string) => process.stderr.write(l + '\n'));
  for (const v of unknownGreenticVariables(env))
    err(
      `greentic-runner: warning: unknown variable ${v.name}` +
        (v.suggestion ? ` (did you mean ${v.suggestion}?)` : '') +
        ', ignored',
    );
  let cfg: Partial<RunnerConfig> = {};
  try {
    // The environment first: a bad variable fails in a moment, before the app is loaded.
    cfg = resolveRunnerConfig(config);
    await (opts.start ?? startRunner)(config);
    return 0;
  } catch (e) {
    const failure = describeStartupFailure(e, cfg);
    for (const l of failure.lines) err(l);
    const level = config['LOG_LEVEL'] ?? env['LOG_LEVEL'];
    if ((level === 'debug' || level === 'trace') && e instanceof Error && e.stack) err(e.stack);
    return failure.exitCode;
  }
}
