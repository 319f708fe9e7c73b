import { Logger } from '@nestjs/common';
import { startApp } from './bootstrap.js';

startApp()
  .then(({ url }) => new Logger('Main').log({ url }, `greentic runner listening on ${url}`))
  .catch((err: unknown) => {
    // Start-up errors (bad config, bad bundle, invalid pack) name the file and key; print them plainly.
    process.stderr.write(
      `greentic-runner failed to start:\n${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exit(1);
  });
