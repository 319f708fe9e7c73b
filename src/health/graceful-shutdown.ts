import { Logger, type INestApplication } from '@nestjs/common';
import { RunnerConfig } from '../config/runner-config.js';
import { shutdownTelemetry } from '../telemetry/otel.js';
import { LifecycleService } from './lifecycle.service.js';

export interface GracefulShutdownOptions {
  /** Defaults to GREENTIC_DRAIN_TIMEOUT_MS. */
  timeoutMs?: number;
  exit?: (code: number) => void;
  signals?: NodeJS.Signals[];
}

/**
 * SIGTERM (and SIGINT): stop accepting, drain in-flight messages up to the timeout, close the app
 * (HTTP server, bus, session store, component runtime through Nest's shutdown hooks), flush
 * telemetry, exit 0 — or 1 when the drain timed out with work abandoned. A second signal while
 * draining exits at once with 1. Used instead of Nest's enableShutdownHooks, which closes without
 * draining and re-raises the signal (the process would die by signal, not exit 0).
 */
export function installGracefulShutdown(
  app: INestApplication,
  opts: GracefulShutdownOptions = {},
): () => Promise<number> {
  const logger = new Logger('Shutdown');
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  let running: Promise<number> | undefined;

  const shutdown = (signal: string): Promise<number> => {
    if (running) return running;
    running = (async () => {
      const timeoutMs = opts.timeoutMs ?? app.get(RunnerConfig).GREENTIC_DRAIN_TIMEOUT_MS;
      logger.log({ signal, timeoutMs }, 'shutdown requested');
      let code = 0;
      try {
        const result = await app.get(LifecycleService).drain(app, timeoutMs);
        if (!result.drained) code = 1;
        await app.close();
        await shutdownTelemetry();
        logger.log({ code }, 'shutdown complete');
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'shutdown failed');
        code = 1;
      }
      return code;
    })();
    return running;
  };

  const onSignal = (signal: NodeJS.Signals): void => {
    if (running) {
      logger.warn({ signal }, 'second signal while draining: exiting now');
      exit(1);
      return;
    }
    void shutdown(signal).then(exit);
  };
  for (const s of signals) process.on(s, onSignal);
  return () => shutdown('manual');
}
