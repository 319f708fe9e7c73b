// Side-by-side comparison of two runner builds on the sync webhook path, for judging one change:
//   node bench/webhook/ab.mjs <distA>[,KEY=VALUE...] <distB>[,KEY=VALUE...] [rounds=5] [seconds=5]
// (a dist is a `dist/` folder from `npm run build`, copied aside before the change; KEY=VALUE
// pairs are environment variables of that side's runner, so one build can also be compared with
// itself under two settings, e.g. `dist dist,GREENTIC_METRICS=false`).
//
// Both runners serve the webhook bundle at once, each under its own autocannon load, and the
// figures are each process's CPU time per request (from /proc), of its main thread and of all its
// threads (garbage collection helpers and component workers run beside the main thread): the two
// builds see the same machine at the same moment, which sequential runs on a drifting machine do
// not. Two copies of one build come out within 2–3 % of each other here. Linux only (/proc).
// Writes bench/results/webhook-ab.json.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';
import { root, table, writeResults } from '../lib/harness.mjs';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';

const [distA, distB, roundsArg = '5', secondsArg = '5'] = process.argv.slice(2);
if (!distA || !distB) {
  process.stderr.write(
    'usage: node bench/webhook/ab.mjs <distA>[,KEY=VALUE...] <distB>[,KEY=VALUE...] [rounds] [seconds]\n',
  );
  process.exit(2);
}
const rounds = Number(roundsArg);
const seconds = Number(secondsArg);
const bundle = await benchBundle('echo');
const server = path.join(root, 'bench/webhook/dist-server.mjs');

function start(side) {
  const [dist, ...settings] = side.split(',');
  const env = { ...process.env, LOG_LEVEL: 'error' };
  for (const kv of settings) {
    const eq = kv.indexOf('=');
    if (eq < 1) throw new Error(`'${kv}' in '${side}' is not KEY=VALUE`);
    env[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [server, path.resolve(dist), bundle], {
      cwd: root,
      env,
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

/** User + system CPU ticks of a process's main thread (its first task), or of all its threads. */
function ticks(pid, allThreads = false) {
  const stat = readFileSync(allThreads ? `/proc/${pid}/stat` : `/proc/${pid}/task/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
const cpuTicks = (pid) => [ticks(pid), ticks(pid, true)];

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
    const ta = cpuTicks(a.child.pid);
    const tb = cpuTicks(b.child.pid);
    const [ra, rb] = await Promise.all([
      autocannon({ ...optsA, duration: seconds }),
      autocannon({ ...optsB, duration: seconds }),
    ]);
    const [ma, aa] = cpuTicks(a.child.pid);
    const [mb, ab] = cpuTicks(b.child.pid);
    const usA = ((ma - ta[0]) * tickUs) / ra.requests.total;
    const usB = ((mb - tb[0]) * tickUs) / rb.requests.total;
    const allA = ((aa - ta[1]) * tickUs) / ra.requests.total;
    const allB = ((ab - tb[1]) * tickUs) / rb.requests.total;
    rows.push({
      round: r + 1,
      aUsPerReq: usA.toFixed(1),
      bUsPerReq: usB.toFixed(1),
      bOverA: (usB / usA).toFixed(3),
      aAllUsPerReq: allA.toFixed(1),
      bAllUsPerReq: allB.toFixed(1),
      bOverAAll: (allB / allA).toFixed(3),
      aReqPerSec: Math.round(ra.requests.average),
      bReqPerSec: Math.round(rb.requests.average),
    });
  }
} finally {
  a.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
}
const mean = (k) => rows.reduce((s, r) => s + Number(r[k]), 0) / rows.length;
const summary = {
  aUsPerReq: mean('aUsPerReq'),
  bUsPerReq: mean('bUsPerReq'),
  aAllUsPerReq: mean('aAllUsPerReq'),
  bAllUsPerReq: mean('bAllUsPerReq'),
};
summary.bOverA = summary.bUsPerReq / summary.aUsPerReq;
summary.bOverAAll = summary.bAllUsPerReq / summary.aAllUsPerReq;
process.stdout.write(
  `\nCPU per request (main thread; all threads), A = ${distA}, B = ${distB}, both under 50 connections at once\n`,
);
process.stdout.write(
  table(rows, [
    'round',
    'aUsPerReq',
    'bUsPerReq',
    'bOverA',
    'aAllUsPerReq',
    'bAllUsPerReq',
    'bOverAAll',
    'aReqPerSec',
    'bReqPerSec',
  ]) + '\n',
);
process.stdout.write(
  `mean main thread: A ${summary.aUsPerReq.toFixed(1)} µs, B ${summary.bUsPerReq.toFixed(1)} µs, B/A ${summary.bOverA.toFixed(3)}; ` +
    `all threads: A ${summary.aAllUsPerReq.toFixed(1)} µs, B ${summary.bAllUsPerReq.toFixed(1)} µs, B/A ${summary.bOverAAll.toFixed(3)}\n`,
);
const file = writeResults('webhook-ab', { distA, distB, rounds, seconds, rows, summary });
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
process.exit(0);
