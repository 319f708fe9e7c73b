// One runner replica from dist/, on the bundle given as argv[2], configured by the environment
// (GREENTIC_BUS, GREENTIC_SESSIONS, NATS_URL, ...); prints LISTENING <url>.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { startApp } from '../../dist/bootstrap.js';
import { MESSAGE_BUS } from '../../dist/core/message-bus.js';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: process.env.LOG_LEVEL ?? 'error' },
});
process.stdout.write(`LISTENING ${url}\n`);
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
// The benchmark reads this process's CPU time and NATS traffic over the measured window: SIGUSR2
// starts it, SIGUSR1 prints `CPU_MS <ms>` and `NATS_MSGS <in> <out>` (the bus connection's counts),
// after `STATS <json>`: GC events and pause time, context switches (voluntary ones are the
// process's threads blocking, mostly the event loop waiting for I/O: its wake-ups), event-loop
// utilisation. BENCH_CPU_PROF=<file prefix>: a CPU profile of the window, written to
// <prefix>-<pid>.cpuprofile. BENCH_HEAP_PROF=<file prefix>: where the window's allocations were
// made (the sampling heap profiler, collected objects included), <prefix>-<pid>.heapprofile; one
// profiler per run, so it is ignored when BENCH_CPU_PROF is set.
const bus = app.get(MESSAGE_BUS);
const traffic = async () => (await bus.health()).details.traffic ?? { inMsgs: 0, outMsgs: 0 };
const gc = { n: 0, ms: 0, byKind: {} };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.n++;
    gc.ms += e.duration;
    const k = e.detail?.kind ?? 0;
    gc.byKind[k] = (gc.byKind[k] ?? 0) + 1;
  }
}).observe({ entryTypes: ['gc'] });
const profPrefix = process.env.BENCH_CPU_PROF;
const heapPrefix = process.env.BENCH_HEAP_PROF;
// Which measured window to profile: 1 the closed loop (default), 2 the idle window after it, 3 the
// fixed-rate row (--rate), where a message costs several times its closed-loop CPU.
const profWindow = Number(process.env.BENCH_CPU_PROF_WINDOW ?? 1);
let windows = 0;
let session;
if (profPrefix || heapPrefix) {
  session = new Session();
  session.connect();
  if (profPrefix) {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
  } else await session.post('HeapProfiler.enable');
}
let cpu0 = process.cpuUsage();
let nats0 = await traffic();
let ru0 = process.resourceUsage();
let gc0 = { ...gc, byKind: { ...gc.byKind } };
let elu0 = performance.eventLoopUtilization();
let profiling = false;
let profiled = false;
process.on('SIGUSR2', async () => {
  cpu0 = process.cpuUsage();
  ru0 = process.resourceUsage();
  gc0 = { ...gc, byKind: { ...gc.byKind } };
  elu0 = performance.eventLoopUtilization();
  nats0 = await traffic();
  windows++;
  if (session && !profiling && !profiled && windows === profWindow) {
    profiling = true;
    profiled = true;
    if (profPrefix) await session.post('Profiler.start');
    else
      await session.post('HeapProfiler.startSampling', {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
  }
});
process.on('SIGUSR1', async () => {
  const c = process.cpuUsage(cpu0);
  const ru = process.resourceUsage();
  const elu = performance.eventLoopUtilization(elu0);
  const stats = {
    userMs: c.user / 1000,
    systemMs: c.system / 1000,
    voluntaryCs: ru.voluntaryContextSwitches - ru0.voluntaryContextSwitches,
    involuntaryCs: ru.involuntaryContextSwitches - ru0.involuntaryContextSwitches,
    gcN: gc.n - gc0.n,
    gcMs: Number((gc.ms - gc0.ms).toFixed(1)),
    gcByKind: Object.fromEntries(Object.entries(gc.byKind).map(([k, v]) => [k, v - (gc0.byKind[k] ?? 0)])),
    eluActiveMs: Number(elu.active.toFixed(1)),
    elu: Number(elu.utilization.toFixed(3)),
  };
  if (session && profiling) {
    profiling = false;
    if (profPrefix) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(`${profPrefix}-${process.pid}.cpuprofile`, JSON.stringify(profile));
    } else {
      const { profile } = await session.post('HeapProfiler.stopSampling');
      writeFileSync(`${heapPrefix}-${process.pid}.heapprofile`, JSON.stringify(profile));
    }
  }
  const n = await traffic();
  process.stdout.write(`STATS ${JSON.stringify(stats)}\n`);
  process.stdout.write(`NATS_MSGS ${n.inMsgs - nats0.inMsgs} ${n.outMsgs - nats0.outMsgs}\n`);
  process.stdout.write(`CPU_MS ${((c.user + c.system) / 1000).toFixed(1)}\n`);
});
