// bench/webhook: the sync webhook path (tenancy → flow → one component call → reply) against a
// bare node:http server answering the same JSON, measured in the same run, at 50 connections.
// Also shows the floor: the same answer from the bare layers the runner is built on (Nest on Fastify, a
// Nest RPC dispatch, a worker-thread hop) with no runner logic, so the runner's own cost shows.
//
// All servers stay up for the whole run and take turns under load in short slices, each round in a
// rotated order. Sequential 10 s rows carried this machine's drift into the ratio (the bare row
// alone moved 33k–57k req/s between runs); a ratio paired within a round, slices seconds apart,
// does not. Each target's figures are medians over the rounds; its ratio is the median of its
// per-round ratios to the bare server.
import path from 'node:path';
import {
  cpuMs,
  load,
  median,
  numberArg,
  pidOf,
  root,
  rotations,
  spawnServer,
  table,
  writeResults,
} from '../lib/harness.mjs';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';

const quick = process.argv.includes('--quick');
const rounds = quick ? 2 : 6;
const duration = quick ? 2 : 3;
const connections = 50;
// Seconds of load each server gets before the first round: V8 keeps compiling a runner's code, and
// its component workers' (an isolate each), for 15–25 s of load, and a slice taken meanwhile counts
// that compilation, and the latency it adds, as the runner's (bench/telemetry/run.mjs has the same).
const warmup = numberArg('warmup', quick ? 2 : 30, { integer: false, min: 0 });

const echoBundle = await benchBundle('echo');
const weatherBundle = await benchBundle('weather');
const route = WEBHOOK_ROUTE;
const floor = path.join(root, 'bench/webhook/floor-server.mjs');
const runner = path.join(root, 'bench/webhook/runner-server.mjs');
const BARE = 'bare node:http';
const RUNNER = 'runner echo';
const targets = [
  { target: BARE, script: path.join(root, 'bench/webhook/bare-server.mjs'), path: '/' },
  // What the layers the runner is built from cost without any runner logic (floor-server.mjs):
  // the most a runner on them could reach, so the gap to it is the runner's own cost.
  { target: 'floor: Nest HTTP route + guard', script: floor, env: { GREENTIC_FLOOR: 'http' } },
  { target: 'floor: + Nest RPC dispatch + guard', script: floor, env: { GREENTIC_FLOOR: 'rpc' } },
  { target: 'floor: + worker-thread hop', script: floor, env: { GREENTIC_FLOOR: 'worker' } },
  { target: RUNNER, script: runner, args: [echoBundle] },
  { target: 'runner demo weather JS', script: runner, args: [weatherBundle] },
];

const samples = new Map(targets.map((t) => [t.target, []]));
try {
  for (const t of targets) {
    t.srv = await spawnServer(t.script, t.args ?? [], t.env ?? {});
    t.url = t.srv.url + (t.path ?? route);
    t.pid = pidOf(t.srv.url);
    // Warm-up: JIT, the per-tenant DI tree, the component instances.
    if (warmup > 0) await load({ url: t.url, connections, duration: warmup, warmup: 0, body: webhookBody });
  }
  for (const { round, item: t } of rotations(targets, rounds)) {
    // A second of load before the measured slice, as the sequential rows had: a server that sat
    // idle while the others ran starts its slice cold (caches, GC heuristics, CPU clocks).
    await load({ url: t.url, connections, duration: 1, warmup: 0, body: webhookBody });
    const cpu0 = cpuMs(t.pid);
    const r = await load({ url: t.url, connections, duration, warmup: 0, body: webhookBody });
    r.cpuUsPerReq = r.total > 0 ? Math.round(((cpuMs(t.pid) - cpu0) * 1000) / r.total) : 0;
    r.round = round;
    samples.get(t.target).push(r);
    process.stdout.write(
      `round ${round + 1} ${t.target}: ${r.reqPerSec} req/s, p99 ${r.p99Ms} ms, ${r.cpuUsPerReq} µs CPU/req\n`,
    );
  }
} finally {
  for (const t of targets) await t.srv?.stop();
}

const bareByRound = new Map(samples.get(BARE).map((x) => [x.round, x.reqPerSec]));
const rows = targets.map(({ target }) => {
  const xs = samples.get(target);
  const ratios = xs.map((x) => x.reqPerSec / bareByRound.get(x.round));
  return {
    target,
    reqPerSec: median(xs.map((x) => x.reqPerSec)),
    p50Ms: median(xs.map((x) => x.p50Ms)),
    p99Ms: median(xs.map((x) => x.p99Ms)),
    cpuUsPerReq: median(xs.map((x) => x.cpuUsPerReq)),
    ratio: median(ratios).toFixed(3),
    ratioMin: Math.min(...ratios).toFixed(3),
    ratioMax: Math.max(...ratios).toFixed(3),
    errors: xs.reduce((n, x) => n + x.errors, 0),
    non2xx: xs.reduce((n, x) => n + x.non2xx, 0),
    total: xs.reduce((n, x) => n + x.total, 0),
    rounds: xs,
  };
});
process.stdout.write(
  `\nsync webhook, ${connections} connections, ${warmup}s warm-up per target, ${rounds} rounds × ${duration}s per target (+1s warm-up each), servers kept up and loaded in turn; medians, ratio paired per round\n`,
);
process.stdout.write(
  table(rows, [
    'target',
    'reqPerSec',
    'p50Ms',
    'p99Ms',
    'cpuUsPerReq',
    'ratio',
    'ratioMin',
    'ratioMax',
    'errors',
    'non2xx',
    'total',
  ]) + '\n',
);
process.stdout.write(
  'cpuUsPerReq: CPU time of the server process (all threads) per request; ratio: median of per-round req/s ratios to the bare server (min and max beside it)\n',
);
const measured = rows.find((r) => r.target === RUNNER);
const target = { ratioAtLeast: 0.25, p99AtMostMs: 20 };
const met = Number(measured.ratio) >= target.ratioAtLeast && measured.p99Ms <= target.p99AtMostMs;
process.stdout.write(
  `target (runner echo ≥ ${target.ratioAtLeast}× bare, p99 ≤ ${target.p99AtMostMs} ms): ${met ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('webhook', {
  connections,
  rounds,
  durationS: duration,
  warmupS: warmup,
  method: 'interleaved',
  rows,
  target,
  met,
});
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
