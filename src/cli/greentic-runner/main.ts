import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2)).catch((err: unknown) => {
  // Start-up errors (bad config, bad bundle, invalid pack) name the file and key; print them plainly.
  process.stderr.write(
    `greentic-runner failed to start:\n${err instanceof Error ? err.message : String(err)}\n`,
  );
  return 1;
});
if (code !== 0) process.exit(code);
