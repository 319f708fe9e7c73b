import { Session } from 'node:inspector/promises';
import { writeFileSync } from 'node:fs';
import { startApp } from '../dist/bootstrap.js';
const { app, url } = await startApp({ config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: 'error' } });
const s = new Session(); s.connect();
await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 100 });
let on = false;
process.on('SIGUSR2', async () => {
  if (!on) { on = true; await s.post('Profiler.start'); }
  else { const { profile } = await s.post('Profiler.stop'); writeFileSync(process.env.PROF_OUT ?? '/tmp/prof/steady.cpuprofile', JSON.stringify(profile)); on = false; process.stdout.write('PROFILE WRITTEN\n'); }
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
