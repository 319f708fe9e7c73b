// Side-by-side comparison of two runner builds on the sync webhook path, for judging one change:
//   node bench/webhook/ab.mjs <distA> <distB> [rounds=5] [seconds=5]
// (a dist is a `dist/` folder from `npm run build`, copied aside before the change).
//
// Both runners serve the webhook bundle at once, each under its own autocannon load, and the
// figure is each process's main-thread CPU time per request (from /proc): the two builds see the
// same machine at the same moment, which sequential runs on a drifting machine do not. Two copies
// of one build come out within 2–3 % of each other here. Linux only (/proc). Writes
// bench/results/webhook-ab.json.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { root, table, writeResults } from '../lib/harness.mjs';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';

const [distA, distB, roundsArg = '5', secondsArg = '5'] = process.argv.slice(2);
if (!distA || !distB) {
  process.stderr.write('usage: node bench/webhook/ab.mjs <distA> <distB> [rounds] [seconds]\n');
  process.exit(2);
}
const rounds = Number(roundsArg);
const seconds = Number(secondsArg);
const bundle = await benchBundle('echo');
const server = path.join(root, 'bench/webhook/dist-server.mjs');

function start(dist) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [server, path.resolve(dist), bundle], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] + WEBHOOK_ROUTE });
    });
    child.once('exit', (code) => reject(new Error(`${dist}: runner exited with ${code} before listening`)));
  });
}

/** User + system CPU ticks of a process's main thread (its first task). */
function mainThreadTicks(pid) {
  const stat = readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function loadOptions(url) {
  let i = 0;
  return {
    url,
    connections: 50,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [{ setupRequest: (req) => ({ ...req, body: webhookBody(i++) }) }],
  };
}

const a = await start(distA);
const b = await start(distB);
const rows = [];
try {
  const optsA = loadOptions(a.url);
  const optsB = loadOptions(b.url);
  await Promise.all([autocannon({ ...optsA, duration: 2 }), autocannon({ ...optsB, duration: 2 })]);
  const tickUs = 1e6 / 100; // USER_HZ
  for (let r = 0; r < rounds; r++) {
    const ta = mainThreadTicks(a.child.pid);
    const tb = mainThreadTicks(b.child.pid);
    const [ra, rb] = await Promise.all([
      autocannon({ ...optsA, duration: seconds }),
      autocannon({ ...optsB, duration: seconds }),
    ]);
    const usA = ((mainThreadTicks(a.child.pid) - ta) * tickUs) / ra.requests.total;
    const usB = ((mainThreadTicks(b.child.pid) - tb) * tickUs) / rb.requests.total;
    rows.push({
      round: r + 1,
      aUsPerReq: usA.toFixed(1),
      bUsPerReq: usB.toFixed(1),
      bOverA: (usB / usA).toFixed(3),
      aReqPerSec: Math.round(ra.requests.average),
      bReqPerSec: Math.round(rb.requests.average),
    });
  }
} finally {
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
}
const mean = (k) => rows.reduce((s, r) => s + Number(r[k]), 0) / rows.length;
const summary = { aUsPerReq: mean('aUsPerReq'), bUsPerReq: mean('bUsPerReq') };
summary.bOverA = summary.bUsPerReq / summary.aUsPerReq;
process.stdout.write(
  `\nmain-thread CPU per request, A = ${distA}, B = ${distB}, both under 50 connections at once\n`,
);
process.stdout.write(
  table(rows, ['round', 'aUsPerReq', 'bUsPerReq', 'bOverA', 'aReqPerSec', 'bReqPerSec']) + '\n',
);
process.stdout.write(
  `mean: A ${summary.aUsPerReq.toFixed(1)} µs, B ${summary.bUsPerReq.toFixed(1)} µs, B/A ${summary.bOverA.toFixed(3)}\n`,
);
const file = writeResults('webhook-ab', { distA, distB, rounds, seconds, rows, summary });
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
process.exit(0);
