// Where tracing's CPU goes, by code: the traced runner and the SDK floor, each against its untraced
// twin, loaded at the same fixed rate under V8's sampling profiler. The main thread's self time is
// summed per request into buckets (each OpenTelemetry package, the runner's telemetry code, the
// rest of the runner, other dependencies, Node's own code, the collector), and the table shows what
// tracing adds to each bucket in the runner and in the floor. It answers what bench/telemetry's
// ratio cannot: which part of the runner's excess over the floor is code the runner could change
// (its own telemetry code), and which is the same SDK calls costing more inside a working process.
// A diagnostic beside bench/telemetry's ratio: one profile per server over the whole run, a few
// interleaved rounds.
//
// node bench/telemetry/profile.mjs [--rate=N] [--duration=S] [--rounds=N]  (after `npm run build`)
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';
import {
  cpuByThreadMs,
  load,
  numberArg,
  pidOf,
  root,
  rotations,
  spawnServer,
  table,
  writeResults,
} from '../lib/harness.mjs';

// Below the traced runner's saturation on a 2-core machine (~2,800 req/s), so every target serves
// the same rate and no slice competes with the load generator for the cores.
const rate = numberArg('rate', 1500);
const duration = numberArg('duration', 5);
const rounds = numberArg('rounds', 3);
const connections = 50;

const bundle = await benchBundle('echo');
const receiver = await spawnServer(path.join(root, 'bench/telemetry/otlp-receiver.mjs'));
const traced = {
  GREENTIC_METRICS: 'false',
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
  OTEL_TRACES_SAMPLER: 'always_on',
  OTEL_BSP_MAX_QUEUE_SIZE: '200000',
};
const runner = path.join(root, 'bench/webhook/runner-server.mjs');
const targets = [
  { name: 'runner, traced', script: runner, env: traced, route: WEBHOOK_ROUTE },
  {
    name: 'runner, off',
    script: runner,
    env: { GREENTIC_METRICS: 'false', OTEL_SDK_DISABLED: 'true' },
    route: WEBHOOK_ROUTE,
  },
  {
    name: 'floor, traced',
    script: path.join(root, 'bench/telemetry/sdk-floor-server.mjs'),
    env: traced,
    route: '/',
  },
  { name: 'floor, bare', script: path.join(root, 'bench/webhook/bare-server.mjs'), env: {}, route: '/' },
];

/** The bucket a profile node's self time goes to, from its script URL. */
function bucket(url, fn) {
  // The innermost package: sdk-trace-node carries its own copy of sdk-trace.
  const otel = [...url.matchAll(/node_modules\/@opentelemetry\/([^/]+)\//g)].at(-1);
  if (otel) return `otel ${otel[1]}`;
  if (url.includes('node_modules/')) return 'other dependencies';
  if (url.includes('/dist/telemetry/')) return 'runner: telemetry';
  if (url.includes('/dist/')) return 'runner: the rest';
  if (url.includes('/bench/')) return 'bench server code';
  if (url.startsWith('node:')) return 'node (JS)';
  if (fn === '(garbage collector)') return 'GC (main thread)';
  // V8's own work on the main thread outside any JS function (compiling, runtime calls).
  if (fn === '(program)') return 'V8 (program)';
  if (fn === '(idle)' || fn === '(root)') return undefined;
  return 'node (native)';
}

/** Self time (µs) per bucket over all samples of a V8 .cpuprofile. */
function selfTimeByBucket(file) {
  const p = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, bucket(n.callFrame.url, n.callFrame.functionName)]));
  const out = {};
  p.samples.forEach((id, i) => {
    const b = byId.get(id);
    if (b) out[b] = (out[b] ?? 0) + (p.timeDeltas[i] ?? 0);
  });
  return out;
}

const perRequest = new Map();
// CPU time per request over the measured slices, from /proc, by thread.
const cpuPerRequest = new Map();
const servers = [];
try {
  // All four stay up and take turns under load, in rotated order each round, as bench/telemetry's
  // servers do: the CPU readings of one round are seconds apart and see the same machine.
  for (const t of targets) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-prof-'));
    const srv = await spawnServer(t.script, [bundle], {
      ...t.env,
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --cpu-prof --cpu-prof-dir=${dir}`.trim(),
    });
    servers.push({ t, srv, dir, url: srv.url + t.route, pid: pidOf(srv.url), requests: 0 });
  }
  // The profile covers the warm-up too, so its requests are counted with the rest.
  for (const s of servers)
    s.requests += (
      await load({ url: s.url, connections, duration: 5, warmup: 0, body: webhookBody, rate })
    ).total;
  const sums = new Map(servers.map((s) => [s, { main: 0, gc: 0, total: 0, requests: 0 }]));
  for (const { item: s } of rotations(servers, rounds)) {
    const cpu0 = cpuByThreadMs(s.pid);
    const r = await load({ url: s.url, connections, duration, warmup: 0, body: webhookBody, rate });
    // The batch processor's last exports of the slice count too.
    await new Promise((res) => setTimeout(res, 1500));
    const cpu1 = cpuByThreadMs(s.pid);
    const acc = sums.get(s);
    for (const k of ['main', 'gc', 'total']) acc[k] += cpu1[k] - cpu0[k];
    acc.requests += r.total;
    s.requests += r.total;
  }
  for (const s of servers) {
    await s.srv.stop();
    s.stopped = true;
    const acc = sums.get(s);
    const us = (ms) => (ms * 1000) / acc.requests;
    cpuPerRequest.set(s.t.name, { main: us(acc.main), gc: us(acc.gc), total: us(acc.total) });
    // The main thread's profile (worker threads write their own, numbered after it).
    const main = readdirSync(s.dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort()[0];
    if (!main) throw new Error(`${s.t.name}: no CPU profile was written in ${s.dir}`);
    const self = selfTimeByBucket(path.join(s.dir, main));
    perRequest.set(s.t.name, Object.fromEntries(Object.entries(self).map(([k, v]) => [k, v / s.requests])));
    rmSync(s.dir, { recursive: true, force: true });
    process.stdout.write(`${s.t.name}: ${s.requests} requests at ${rate} req/s profiled\n`);
  }
} finally {
  for (const s of servers) if (!s.stopped) await s.srv.stop();
  await receiver.stop();
}

// What tracing adds per bucket: traced minus untraced, for the runner and for the floor.
const added = (a, b) => {
  const x = perRequest.get(a);
  const y = perRequest.get(b);
  return Object.fromEntries(
    [...new Set([...Object.keys(x), ...Object.keys(y)])].map((k) => [k, (x[k] ?? 0) - (y[k] ?? 0)]),
  );
};
const runnerAdds = added('runner, traced', 'runner, off');
const floorAdds = added('floor, traced', 'floor, bare');
const buckets = [...new Set([...Object.keys(runnerAdds), ...Object.keys(floorAdds)])].sort(
  (a, b) => (runnerAdds[b] ?? 0) - (runnerAdds[a] ?? 0),
);
const round1 = (v) => Math.round((v ?? 0) * 10) / 10;
const rows = buckets.map((b) => ({
  bucket: b,
  runnerAddsUs: round1(runnerAdds[b]),
  floorAddsUs: round1(floorAdds[b]),
  differenceUs: round1((runnerAdds[b] ?? 0) - (floorAdds[b] ?? 0)),
}));
const sum = (o, pred = () => true) => Object.entries(o).reduce((s, [k, v]) => (pred(k) ? s + v : s), 0);
const isOtel = (k) => k.startsWith('otel ');
rows.push({
  bucket: 'all (main thread)',
  runnerAddsUs: round1(sum(runnerAdds)),
  floorAddsUs: round1(sum(floorAdds)),
  differenceUs: round1(sum(runnerAdds) - sum(floorAdds)),
});
process.stdout.write(
  `\nmain-thread self time tracing adds per request (µs), ${rate} req/s, ${connections} connections, ${rounds} round(s) × ${duration} s after a 5 s warm-up\n`,
);
process.stdout.write(table(rows, ['bucket', 'runnerAddsUs', 'floorAddsUs', 'differenceUs']) + '\n');
const summary = {
  otelRunnerUs: round1(sum(runnerAdds, isOtel)),
  otelFloorUs: round1(sum(floorAdds, isOtel)),
  runnerTelemetryCodeUs: round1(runnerAdds['runner: telemetry']),
};
process.stdout.write(
  `OpenTelemetry's own code: ${summary.otelRunnerUs} µs per message in the runner, ${summary.otelFloorUs} in the floor, for the same spans; the runner's telemetry code: ${summary.runnerTelemetryCodeUs} µs\n`,
);
// The same question in CPU time, all threads, from /proc: the profile samples only the event loop,
// and its sample times include waits for a core. At a fixed rate, not bench/telemetry's saturation.
const cpuAdded = (a, b) =>
  Object.fromEntries(
    ['main', 'gc', 'total'].map((k) => [k, round1(cpuPerRequest.get(a)[k] - cpuPerRequest.get(b)[k])]),
  );
const cpu = {
  runner: cpuAdded('runner, traced', 'runner, off'),
  floor: cpuAdded('floor, traced', 'floor, bare'),
};
summary.cpuAddedRatio = Math.round((cpu.runner.total / cpu.floor.total) * 100) / 100;
process.stdout.write(
  `CPU tracing adds per request (/proc, all threads): runner ${cpu.runner.total} µs (event loop ${cpu.runner.main}, V8 helpers ${cpu.runner.gc}), floor ${cpu.floor.total} µs (${cpu.floor.main}, ${cpu.floor.gc}): ${summary.cpuAddedRatio}×\n`,
);
const file = writeResults('telemetry-profile', {
  cpuAddedUsPerRequest: cpu,
  rate,
  connections,
  durationS: duration,
  rounds,
  rows,
  summary,
  perRequestUs: Object.fromEntries(perRequest),
  cpuPerRequestUs: Object.fromEntries(cpuPerRequest),
});
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
