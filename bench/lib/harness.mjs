// Shared benchmark plumbing: child-process servers, autocannon runs, tables and JSON results.
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import autocannon from 'autocannon';

export const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');

/**
 * The runner runs on the pinned `node` dev dependency, first on the PATH of npm scripts and npx.
 * A benchmark started with the machine's own `node` (Node 20 on this project's machines) measures
 * another runtime, and its servers inherit it: said on stderr, not refused, since comparing
 * runtimes is a fair question too.
 */
const pinned = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).devDependencies?.node;
if (pinned && process.version !== `v${pinned}`) {
  process.stderr.write(
    `note: this benchmark runs on Node ${process.version}, the runner on ${pinned}: use npm run bench or npx node\n`,
  );
}

/**
 * Starts `node script ...args` and resolves with the URL it prints as `LISTENING <url>`.
 * Servers run in their own process so the load generator never shares their event loop.
 */
export function spawnServer(script, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: root,
      env: { ...process.env, LOG_LEVEL: 'error', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 60 s`)), 60_000);
    child.stdout.on('data', (d) => {
      buf += d.toString();
      const m = /LISTENING (\S+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: m[1],
          stop: () =>
            new Promise((r) => {
              child.once('exit', r);
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before listening`));
    });
  });
}

/** One autocannon run; `body(i)` makes the i-th request body so sessions can differ. */
export async function load({ url, connections = 50, duration = 10, body, headers = {}, warmup = 2, rate }) {
  let i = 0;
  const opts = {
    url,
    connections,
    // A fixed offered load (requests per second over all connections) instead of saturation.
    ...(rate ? { overallRate: rate } : {}),
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    requests: [{ setupRequest: (req) => ({ ...req, body: body(i++) }) }],
  };
  if (warmup > 0) await autocannon({ ...opts, duration: warmup });
  const r = await autocannon({ ...opts, duration });
  return {
    reqPerSec: Math.round(r.requests.average),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    errors: r.errors + r.timeouts,
    non2xx: r.non2xx,
    total: r.requests.total,
  };
}

/**
 * The slices of an interleaved run: `rounds` rounds over `items`, each round starting one item
 * later, so no item is always loaded first or right after the same neighbour. This machine's speed
 * drifts by tens of percent within minutes; slices of one round are seconds apart and see the same
 * machine, so costs paired within a round see through the drift that sequential rows carry.
 */
export function* rotations(items, rounds) {
  for (let round = 0; round < rounds; round++)
    for (let i = 0; i < items.length; i++) yield { round, item: items[(i + round) % items.length] };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

/**
 * A numeric `--name=N` option of this benchmark run, or `fallback`. `integer` asks for a whole
 * number; `min` is the least value allowed. A bad value stops the run with what was expected.
 */
export function numberArg(name, fallback, { integer = true, min = 1 } = {}) {
  const raw = process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const v = raw === undefined ? fallback : Number(raw);
  if (!Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min)
    throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} ≥ ${min}, got ${raw}`);
  return v;
}

/** The pid of the process listening on the server URL's port, for its CPU time in /proc. */
export function pidOf(url) {
  const port = new URL(url).port;
  const out = execFileSync('ss', ['-Hltnp', `sport = :${port}`], { encoding: 'utf8' });
  const pid = /pid=(\d+)/.exec(out)?.[1];
  if (!pid)
    throw new Error(`no process found listening on port ${port} (ss output: ${out.trim() || 'empty'})`);
  return Number(pid);
}

/**
 * CPU time (user + system, ms, all threads) of a process so far. Throughput on this shared 2-core
 * machine moves with whatever else runs; CPU spent per request is a server's own cost and barely
 * does.
 */
export function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time (ms) of a process so far: `total` as `cpuMs` has it, and two threads' shares of it,
 * `main` (the event loop) and `gc` (V8's helper threads: parallel scavenges, concurrent marking
 * and sweeping); the rest is worker threads and libuv's pool. The total comes from the process's
 * own line, which keeps the time of threads that have ended.
 */
export function cpuByThreadMs(pid) {
  const out = { total: cpuMs(pid), main: 0, gc: 0 };
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = (Number(fields[11]) + Number(fields[12])) * 10;
    if (tid === String(pid)) out.main += ms;
    else if (name.startsWith('V8')) out.gc += ms;
  }
  return out;
}

export function table(rows, columns) {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells) => cells.map((c, i) => String(c ?? '').padEnd(widths[i])).join('  ');
  return [
    line(columns),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(columns.map((c) => r[c]))),
  ].join('\n');
}

export function writeResults(name, data) {
  const dir = path.join(root, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      { benchmark: name, at: new Date().toISOString(), node: process.version, ...data },
      null,
      2,
    ) + '\n',
  );
  return file;
}
