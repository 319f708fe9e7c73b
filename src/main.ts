import { startRunner } from './cli/greentic-runner/start.js';

// Same as `greentic-runner start`: listen, then drain and exit 0 on SIGTERM.
startRunner().catch((err: unknown) => {
  // Start-up errors (bad config, bad bundle, invalid pack) name the file and key; print them plainly.
  process.stderr.write(
    `greentic-runner failed to start:\n${err instanceof Error ? err.message : String(err)}\n`,
  );
  process.exit(1);
});
