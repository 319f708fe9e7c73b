// One runner replica from dist/, on the bundle given as argv[2], configured by the environment
// (GREENTIC_BUS, GREENTIC_SESSIONS, NATS_URL, ...); prints LISTENING <url>.
import { startApp } from '../../dist/bootstrap.js';
import { MESSAGE_BUS } from '../../dist/core/message-bus.js';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
// The benchmark reads this process's CPU time and NATS traffic over the measured window: SIGUSR2
// starts it, SIGUSR1 prints `CPU_MS <ms>` and `NATS_MSGS <in> <out>` (the bus connection's counts).
const bus = app.get(MESSAGE_BUS);
const traffic = async () => (await bus.health()).details.traffic ?? { inMsgs: 0, outMsgs: 0 };
let cpu0 = process.cpuUsage();
let nats0 = await traffic();
process.on('SIGUSR2', async () => {
  cpu0 = process.cpuUsage();
  nats0 = await traffic();
});
process.on('SIGUSR1', async () => {
  const c = process.cpuUsage(cpu0);
  const n = await traffic();
  process.stdout.write(`NATS_MSGS ${n.inMsgs - nats0.inMsgs} ${n.outMsgs - nats0.outMsgs}\n`);
  process.stdout.write(`CPU_MS ${((c.user + c.system) / 1000).toFixed(1)}\n`);
});
