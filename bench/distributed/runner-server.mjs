// One runner replica from dist/, on the bundle given as argv[2], configured by the environment
// (GREENTIC_BUS, GREENTIC_SESSIONS, NATS_URL, ...); prints LISTENING <url>.
import { startApp } from '../../dist/bootstrap.js';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
// The benchmark reads this process's CPU time over the measured window: SIGUSR2 starts it,
// SIGUSR1 prints `CPU_MS <ms>`.
let cpu0 = process.cpuUsage();
process.on('SIGUSR2', () => (cpu0 = process.cpuUsage()));
process.on('SIGUSR1', () => {
  const c = process.cpuUsage(cpu0);
  process.stdout.write(`CPU_MS ${((c.user + c.system) / 1000).toFixed(1)}\n`);
});
