// A runner from a given build (argv[2]: a dist/ folder) on the bundle argv[3]; prints LISTENING <url>.
// Used by ab.mjs to serve two builds side by side.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const { startApp } = await import(pathToFileURL(path.join(process.argv[2], 'bootstrap.js')).href);
const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[3], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
