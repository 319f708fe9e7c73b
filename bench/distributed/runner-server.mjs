// One runner replica from dist/, on the bundle given as argv[2], configured by the environment
// (GREENTIC_BUS, GREENTIC_SESSIONS, NATS_URL, ...); prints LISTENING <url>.
import { startApp } from '../../dist/bootstrap.js';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
