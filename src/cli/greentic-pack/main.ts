import { runCli } from './cli.js';

// `greentic-pack inspect x | head` closes the pipe early; that is not an error worth a stack.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await runCli(process.argv.slice(2));
