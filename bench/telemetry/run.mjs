// bench/telemetry: what telemetry costs on the webhook path. The foundation's webhook benchmark
// (sync webhook → flow → one WAT component call → reply, 50 connections) against the runner with
// telemetry off, metrics only (Prometheus reader), traces sampled at 100% to a local OTLP/HTTP
// receiver, and both; modes interleaved over several rounds in the same run, medians compared
// with "off" as the baseline.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';
import { load, root, spawnServer, table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
// Many short rounds, each in a rotated order: this machine's speed drifts by tens of percent
// within a minute, and the medians of interleaved rounds see through it.
const rounds = quick ? 1 : 6;
const duration = quick ? 3 : 5;
const connections = 50;

const bundle = await benchBundle('echo');
const receiver = await spawnServer(path.join(root, 'bench/telemetry/otlp-receiver.mjs'));
const runner = path.join(root, 'bench/webhook/runner-server.mjs');
// Queue and batch sized for this load, so spans are exported rather than dropped (a dropped span
// costs less than an exported one and would flatter the numbers); drops would show below.
const bsp = {
  OTEL_BSP_MAX_QUEUE_SIZE: '200000',
  OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '4096',
  OTEL_BSP_SCHEDULE_DELAY: '500',
};
const modes = [
  { mode: 'off', env: { OTEL_SDK_DISABLED: 'true', GREENTIC_METRICS: 'false' } },
  { mode: 'metrics only', env: { GREENTIC_METRICS: 'true' } },
  {
    mode: 'traces 100%',
    env: {
      GREENTIC_METRICS: 'false',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_TRACES_SAMPLER: 'always_on',
      ...bsp,
    },
  },
  {
    mode: 'traces + metrics',
    env: {
      GREENTIC_METRICS: 'true',
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_TRACES_SAMPLER: 'always_on',
      ...bsp,
    },
  },
];

/**
 * CPU time (user + system, ms) of the process listening on the server's port. Throughput on this
 * shared 2-core machine moves with whatever else runs; CPU spent per request is the runner's own
 * cost and barely does, so the cost of each mode is computed from it (throughput is shown too).
 */
function pidOf(url) {
  const port = new URL(url).port;
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (!pid)
    throw new Error(`no process found listening on port ${port} (ss output: ${out.trim() || 'empty'})`);
  return Number(pid);
}
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function receiverStats() {
  return (await fetch(`${receiver.url}/stats`)).json();
}

const samples = new Map(modes.map((m) => [m.mode, []]));
try {
  for (let round = 0; round < rounds; round++) {
    for (const m of modes.map((_, i) => modes[(i + round) % modes.length])) {
      const srv = await spawnServer(runner, [bundle], { GREENTIC_TENANCY_SCOPE: 'durable', ...m.env });
      let r;
      let before;
      try {
        const url = srv.url + WEBHOOK_ROUTE;
        await load({ url, connections, duration: 2, warmup: 0, body: webhookBody });
        // Let the warm-up's spans land, so spans per request counts the measured requests only.
        await new Promise((res) => setTimeout(res, 700));
        before = await receiverStats();
        const pid = pidOf(srv.url);
        const cpu0 = cpuMs(pid);
        r = await load({ url, connections, duration, warmup: 0, body: webhookBody });
        r.cpuUsPerReq = r.total > 0 ? Math.round(((cpuMs(pid) - cpu0) * 1000) / r.total) : 0;
        if (m.mode.includes('metrics')) {
          const res = await fetch(`${srv.url}/metrics`);
          if (res.status !== 200) throw new Error(`/metrics answered ${res.status} in mode '${m.mode}'`);
        }
      } finally {
        await srv.stop(); // SIGTERM: the runner flushes its span queue before exiting
      }
      const after = await receiverStats();
      samples.get(m.mode).push({ ...r, spans: after.spans - before.spans });
      process.stdout.write(
        `round ${round + 1} ${m.mode}: ${r.reqPerSec} req/s, ${r.cpuUsPerReq} µs CPU/req, p99 ${r.p99Ms} ms, ${after.spans - before.spans} spans\n`,
      );
    }
  }
} finally {
  await receiver.stop();
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const rows = modes.map(({ mode }) => {
  const xs = samples.get(mode);
  const requests = xs.reduce((n, x) => n + x.total, 0);
  const spans = xs.reduce((n, x) => n + x.spans, 0);
  return {
    mode,
    reqPerSec: median(xs.map((x) => x.reqPerSec)),
    cpuUsPerReq: median(xs.map((x) => x.cpuUsPerReq)),
    p50Ms: median(xs.map((x) => x.p50Ms)),
    p99Ms: median(xs.map((x) => x.p99Ms)),
    errors: xs.reduce((n, x) => n + x.errors + x.non2xx, 0),
    spansPerRequest: requests > 0 ? (spans / requests).toFixed(1) : '0',
  };
});
const off = rows[0];
for (const r of rows) {
  // Throughput cost at saturation: the share of capacity lost = 1 - cpu(off) / cpu(mode).
  r.costPct = ((1 - off.cpuUsPerReq / r.cpuUsPerReq) * 100).toFixed(1);
  r.throughputDeltaPct = (((r.reqPerSec - off.reqPerSec) / off.reqPerSec) * 100).toFixed(1);
}

process.stdout.write(
  `\nsync webhook (echo component), ${connections} connections, ${rounds} round(s) × ${duration}s per mode (+2s warm-up), medians\n`,
);
process.stdout.write(
  table(rows, [
    'mode',
    'cpuUsPerReq',
    'costPct',
    'reqPerSec',
    'throughputDeltaPct',
    'p50Ms',
    'p99Ms',
    'spansPerRequest',
    'errors',
  ]) + '\n',
);
process.stdout.write(
  'costPct: capacity lost to telemetry, from CPU time per request (1 - off/mode); throughputDeltaPct: raw req/s change (noisy on a shared machine)\n',
);
const target = { metricsCostPctBelow: 5, tracesCostPctBelow: 20 };
const metricsMet = Number(rows[1].costPct) < target.metricsCostPctBelow;
const tracesMet = Number(rows[2].costPct) < target.tracesCostPctBelow;
process.stdout.write(
  `target metrics < ${target.metricsCostPctBelow}%: ${metricsMet ? 'met' : 'NOT met'}; full tracing < ${target.tracesCostPctBelow}%: ${tracesMet ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('telemetry', {
  connections,
  durationS: duration,
  rounds,
  rows,
  samples: Object.fromEntries(samples),
  target,
  met: { metrics: metricsMet, traces: tracesMet },
});
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
