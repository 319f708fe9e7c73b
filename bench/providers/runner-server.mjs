// The runner from dist/, on the bundle given as argv[2]; prints LISTENING <url>. Provider secrets
// come from the environment backend (GREENTIC_SECRET_*), set by run.mjs.
import { startApp } from '../../dist/bootstrap.js';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
