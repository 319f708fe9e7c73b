// Promises per message on the sync webhook path, by where they are created:
//   node bench/webhook/promises.mjs [dist=dist] [off|metrics|traces|all] [seconds=5]
// Runs one runner build (dist-server.mjs) with promise-hook.mjs preloaded, warms it up, counts the
// promises created under `seconds` of autocannon load (50 connections, the webhook bundle) and
// prints them per request, grouped by the innermost runner module on the creating stack and by the
// module (or package) that created each one. Telemetry: off (no SDK, no metrics), metrics (the
// default: metrics on, no traces), traces (100 % sampling to a local OTLP receiver, metrics off),
// all (both). The hook's stack captures make the runner slow; the counts do not depend on speed.
import { readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { load, root, spawnServer } from '../lib/harness.mjs';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';

const [dist = 'dist', mode = 'metrics', secondsArg = '5'] = process.argv.slice(2);
const bundle = await benchBundle('echo');
const out = path.join(os.tmpdir(), `promise-count-${process.pid}.json`);
const receiver =
  mode === 'traces' || mode === 'all'
    ? await spawnServer(path.join(root, 'bench/telemetry/otlp-receiver.mjs'))
    : undefined;
const env = {
  off: { OTEL_SDK_DISABLED: 'true', GREENTIC_METRICS: 'false' },
  metrics: { GREENTIC_METRICS: 'true' },
  traces: { GREENTIC_METRICS: 'false', OTEL_TRACES_SAMPLER: 'always_on' },
  all: { GREENTIC_METRICS: 'true', OTEL_TRACES_SAMPLER: 'always_on' },
}[mode];
if (!env) throw new Error(`unknown mode '${mode}' (off, metrics, traces, all)`);
if (receiver) env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.url;

const child = spawn(
  process.execPath,
  [
    '--import',
    path.join(root, 'bench/webhook/promise-hook.mjs'),
    path.join(root, 'bench/webhook/dist-server.mjs'),
    path.resolve(dist),
    bundle,
  ],
  {
    cwd: root,
    env: {
      ...process.env,
      LOG_LEVEL: 'error',
      PROMISE_COUNT_OUT: out,
      PROMISE_COUNT_DIST: path.resolve(dist) + '/',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  },
);
const url = await new Promise((resolve, reject) => {
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    const m = /LISTENING (\S+)/.exec(buf);
    if (m) resolve(m[1] + WEBHOOK_ROUTE);
  });
  child.once('exit', (code) => reject(new Error(`runner exited with ${code} before listening`)));
});
try {
  await load({ url, duration: 2, warmup: 0, body: webhookBody });
  child.kill('SIGUSR2');
  const r = await load({ url, duration: Number(secondsArg), warmup: 0, body: webhookBody });
  child.kill('SIGUSR2');
  let counts;
  for (let i = 0; i < 50 && !counts; i++) {
    await new Promise((res) => setTimeout(res, 100));
    try {
      counts = JSON.parse(readFileSync(out, 'utf8'));
    } catch {
      // not written yet
    }
  }
  rmSync(out, { force: true });
  const perReq = (n) => (n / r.total).toFixed(1);
  const byRunner = new Map();
  for (const [k, n] of Object.entries(counts.counts)) {
    const runner = k.split(' <- ')[0];
    byRunner.set(runner, (byRunner.get(runner) ?? 0) + n);
  }
  process.stdout.write(
    `${dist} (${mode}): ${r.total} requests (${r.errors + r.non2xx} failed), ${perReq(counts.total)} promises per request\n\nby innermost runner module:\n`,
  );
  for (const [k, n] of [...byRunner].sort((a, b) => b[1] - a[1]))
    if (n / r.total >= 0.05) process.stdout.write(`  ${perReq(n).padStart(5)}  ${k}\n`);
  process.stdout.write('\nby innermost runner module <- creating module:\n');
  for (const [k, n] of Object.entries(counts.counts).sort((a, b) => b[1] - a[1]))
    if (n / r.total >= 0.05) process.stdout.write(`  ${perReq(n).padStart(5)}  ${k}\n`);
} finally {
  child.kill('SIGTERM');
  await receiver?.stop();
}
