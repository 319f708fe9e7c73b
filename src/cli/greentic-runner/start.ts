import { Logger } from '@nestjs/common';
import { startApp } from '../../bootstrap.js';
import { installGracefulShutdown } from '../../health/graceful-shutdown.js';

/** Starts the runner and hands SIGTERM/SIGINT to the graceful shutdown (drain, close, exit 0). */
export async function startRunner(config: Record<string, string | undefined> = {}): Promise<void> {
  const { app, url } = await startApp({ config });
  installGracefulShutdown(app);
  new Logger('Main').log({ url }, `greentic runner listening on ${url}`);
}
