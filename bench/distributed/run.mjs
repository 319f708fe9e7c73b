// bench/distributed: end-to-end messages/s and latency (webhook accepted → reply published on
// egress and back to the waiting caller) for the runner on NATS JetStream + Redis with 1, 2 and 3
// replicas, against, in the same run and on the same machine:
//   (a) the same runner on its embedded in-memory bus and sessions, and
//   (b) a bare loop: JetStream publish → pull consume → Redis GET + SET → JetStream publish.
// Each of the concurrent callers holds one conversation (its own session) and sends its turns
// one after the other, to the replicas in turn, as a chat does. Also reports, per message: the
// worker processes' CPU time (which compares the paths even on a busy machine), the Redis
// commands (server-wide count over the window) and the NATS messages the replicas sent and
// received. Needs NATS (JetStream) on 127.0.0.1:4222 and Redis on 127.0.0.1:6379
// (NATS_URL / REDIS_URL override). Options: --quick (3 s runs), --partitions=N, --warmup=S and
// --duration=S (every row the same), --only=bare,memory,1,2 (just those rows, printing where their
// CPU goes: user/system, GC count and pause, wake-ups = voluntary context switches, preemptions,
// event-loop active time, per message and per replica; no results file). BENCH_CPU_PROF=<prefix>
// writes a CPU profile of each replica's measured window (<prefix>-<pid>.cpuprofile);
// BENCH_CPU_PROF_WINDOW=3 profiles the --rate row's window instead (2: the idle window).
// Every row is measured after the same warm-up under its own load (15 s: see warmupMs): a replica
// takes tens of seconds under load to reach its steady cost (JIT, first session loads).
// A replica that dies mid-run is reported and does not hang the bench; replicas die with it.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { root, table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
const opt = (name) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const durationMs = Number(opt('duration') ?? (quick ? 3 : 10)) * 1000;
// 15 s, every row: with 2 s, the CPU per message measured was start-up cost, not steady state
// (JIT, the replicas' partition hand-over at start, first session loads; each replica warms on its
// own share of the load): 0.65 ms (1 replica) and 1.04 ms (2) after 2 s, 0.41 and 0.54 after
// 10 s, 0.36 and 0.56 after 20 s (one --quick run each, 2026-12-05).
const warmupMs = Number(opt('warmup') ?? 15) * 1000;
/**
 * --rate=N (default 200, 0 skips): after the closed-loop window, each NATS + Redis row is measured
 * again at N messages/s per replica (N, 2N, 3N in all), below saturation at every count. CPU per
 * message depends on how many messages each process handles per wake-up, so replicas compare at
 * equal load each, which is what adding a replica with its own core gives. The closed loop cannot
 * show that on two cores: it saturates both, and at 2–3 replicas each process gets fewer messages
 * per wake-up and is preempted more (2026-12-05: one replica at 250 msg/s 1.77–1.95 ms per message,
 * two at 500 in all 1.71; at a fixed 500 msg/s in all, 1.23 against 1.64).
 */
const ratePerReplica = Number(opt('rate') ?? 200);
/**
 * --only=1,2: just those NATS + Redis replica counts, and `bare` or `memory` for those rows (a
 * diagnosis run: table only, no results file).
 */
const only = opt('only')?.split(',');
/** The idle window after each runner scenario's load, for the NATS traffic that does not depend on messages. */
const IDLE_MS = 3000;
const concurrency = 64;
const partitions = process.argv.find((a) => a.startsWith('--partitions='))?.split('=')[1];
const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const runId = `bench${Date.now().toString(36)}`;
const STREAM_PREFIX = `B_${runId}`.toUpperCase();
const SUBJECT_PREFIX = runId;
const REDIS_PREFIX = `bench:${runId}`;

const nc = await connect({ servers: NATS_URL, timeout: 2000 }).catch((e) => {
  process.stderr.write(`bench/distributed needs NATS with JetStream at ${NATS_URL}: ${e.message}\n`);
  process.exit(2);
});
const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
redis.on('error', () => undefined);
await redis.connect().catch((e) => {
  process.stderr.write(`bench/distributed needs Redis at ${REDIS_URL}: ${e.message}\n`);
  process.exit(2);
});
const jsm = await jetstreamManager(nc);

const { assembleWatFile } = await import(path.join(root, 'dist/wasm/component-builder.js'));
const echoWasm = await assembleWatFile(path.join(root, 'test/fixtures/components/echo.wat'));

/** One component call and one reply: the messaging path dominates, not the component. */
function benchBundle() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-dist-'));
  const pack = path.join(dir, 'packs/bench');
  mkdirSync(path.join(pack, 'flows'), { recursive: true });
  mkdirSync(path.join(pack, 'components/echo'), { recursive: true });
  copyFileSync(echoWasm, path.join(pack, 'components/echo/component.wasm'));
  writeFileSync(
    path.join(pack, 'flows/bench.ygtc'),
    `id: bench
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply:
      text: "echo {{call.payload}}"
`,
  );
  writeFileSync(
    path.join(pack, 'pack.yaml'),
    `id: bench
version: 1.0.0
flows: [flows/bench.ygtc]
components:
  - { name: echo, version: 0.1.0, path: components/echo/component.wasm }
`,
  );
  const bundle = path.join(dir, 'bundle.yaml');
  writeFileSync(
    bundle,
    `trust: { policy: dev }
tenants:
  bench:
    packs: [{ id: bench, source: file:./packs/bench }]
    envs:
      dev:
        teams:
          default:
            channels:
              web: { provider: webhook, pack: bench, flow: bench, session_ttl_seconds: 600 }
`,
  );
  return bundle;
}

/**
 * Like the harness's spawnServer, plus the child's CPU time over the measured window (SIGUSR2
 * starts it, SIGUSR1 reads it).
 */
function startProcess(script, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      cwd: root,
      // BENCH_LOG_LEVEL=warn shows the replicas' warnings (on stderr) when a row has errors.
      env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let buf = '';
    const cpuWaiters = [];
    /** NATS messages in and out over the window, read with the CPU time (runner replicas only). */
    let nats = { in: 0, out: 0 };
    let stats;
    let stopping = false;
    const handle = (url) => ({
      url,
      nats: () => nats,
      stats: () => stats,
      cpuStart: () => child.kill('SIGUSR2'),
      cpuRead: () =>
        new Promise((r) => {
          cpuWaiters.push(r);
          child.kill('SIGUSR1');
        }),
      stop: () =>
        new Promise((r) => {
          stopping = true;
          if (child.exitCode !== null || child.signalCode !== null) return r();
          child.once('exit', r);
          child.kill('SIGTERM');
        }),
    });
    child.stdout.on('data', (d) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop();
      for (const line of lines) {
        const l = /^LISTENING (\S+)/.exec(line);
        if (l) resolve(handle(l[1]));
        const n = /^NATS_MSGS (\d+) (\d+)/.exec(line);
        if (n) nats = { in: Number(n[1]), out: Number(n[2]) };
        const st = /^STATS (.*)$/.exec(line);
        if (st) stats = JSON.parse(st[1]);
        const c = /^CPU_MS (\S+)/.exec(line);
        if (c) cpuWaiters.shift()?.(Number(c[1]));
        // Anything else is the replica's log (JSON lines): passed on, so an error is seen.
        if (!l && !n && !st && !c && line.trim()) process.stderr.write(line + '\n');
      }
    });
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)));
    // A bench that dies leaves no replica behind.
    const orphan = () => child.kill('SIGKILL');
    process.once('exit', orphan);
    child.once('exit', (code, signal) => {
      process.off('exit', orphan);
      if (!stopping)
        process.stderr.write(`${path.basename(script)} exited (${code ?? signal}) during the run\n`);
    });
  });
}

/** Closed-loop load: `concurrency` workers, each sending its next request when the last is answered. */
async function closedLoop(send, onMeasureStart) {
  const latencies = [];
  let errors = 0;
  let firstError;
  let seq = 0;
  let recording = false;
  const worker = async (deadline, w) => {
    while (Date.now() < deadline) {
      const i = seq++;
      const t0 = performance.now();
      try {
        await send(i, w);
        if (recording) latencies.push(performance.now() - t0);
      } catch (e) {
        if (recording) errors++;
        firstError ??= e.message;
      }
    }
  };
  const run = (ms) => {
    const deadline = Date.now() + ms;
    return Promise.all(Array.from({ length: concurrency }, (_, w) => worker(deadline, w)));
  };
  await run(warmupMs);
  onMeasureStart();
  recording = true;
  const t0 = performance.now();
  await run(durationMs);
  const seconds = (performance.now() - t0) / 1000;
  if (firstError) process.stderr.write(`first error: ${firstError}\n`);
  return loadSummary(latencies, seconds, errors);
}

/** Throughput, latency percentiles and counts of one load window. */
function loadSummary(latencies, seconds, errors) {
  latencies.sort((a, b) => a - b);
  const pct = (p) =>
    latencies.length
      ? Math.round(
          latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] * 100,
        ) / 100
      : NaN;
  return {
    msgPerSec: Math.round(latencies.length / seconds),
    p50Ms: pct(50),
    p99Ms: pct(99),
    errors,
    total: latencies.length,
  };
}

/**
 * Paced load at `rate` messages/s for `ms`: the callers take turns on a fixed schedule (caller w's
 * k-th turn is due at start + (k × concurrency + w) / rate), each still waiting for its answer
 * before its next turn, as a chat does. A turn that comes due while the previous one is unanswered
 * goes out when it is answered, so `msgPerSec` below `rate` means the replicas fell behind.
 */
async function pacedLoop(send, rate, ms) {
  const latencies = [];
  let errors = 0;
  let seq = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  const sleep = (until) => new Promise((r) => setTimeout(r, Math.max(0, until - performance.now())));
  const worker = async (w) => {
    for (let k = 0; ; k++) {
      const due = t0 + ((k * concurrency + w) * 1000) / rate;
      if (due >= end) return;
      await sleep(due);
      const i = seq++;
      const s = performance.now();
      try {
        await send(i, w);
        latencies.push(performance.now() - s);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return loadSummary(latencies, (performance.now() - t0) / 1000, errors);
}

const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
function postJson(url, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve()
            : reject(new Error(`HTTP ${res.statusCode} ${text.slice(0, 200)}`)),
        );
      },
    );
    req.on('error', reject);
    req.setTimeout(30_000, () => req.destroy(new Error('no answer within 30 s')));
    req.end(data);
  });
}

const ROUTE = '/webhooks/webhook/bench/dev/default/web?wait=true';
const bundle = benchBundle();
const runnerScript = path.join(root, 'bench/distributed/runner-server.mjs');

async function runnerScenario(label, replicas, env, withRate = false) {
  const servers = [];
  try {
    // Replicas start one after the other: the first creates the streams and consumers.
    for (let r = 0; r < replicas; r++) servers.push(await startProcess(runnerScript, [bundle], env));
    // Ids unique per scenario: a reused id would be dropped by JetStream's de-duplication.
    const tag = `${replicas}r${Date.now().toString(36)}`;
    let trips;
    // Caller w's conversation: its turns go to the replicas in turn, whichever owns the session.
    const failures = [];
    const send = (i, w) => {
      const body = { userId: `${tag}-w${w}`, text: `m${i}`, messageId: `${tag}-${i}` };
      return postJson(servers[i % servers.length].url + ROUTE, body).catch((e) => {
        failures.push({ ...body, replica: i % servers.length, at: new Date().toISOString(), err: e.message });
        throw e;
      });
    };
    const result = await closedLoop(send, () => {
      servers.forEach((s) => s.cpuStart());
      trips = redisRoundTrips();
    });
    const cpuMs = (await Promise.all(servers.map((s) => s.cpuRead()))).reduce((a, b) => a + b, 0);
    const redisTrips = await trips.stop();
    const stats = servers.map((s) => s.stats());
    const statSum = (k) => stats.reduce((t, x) => t + (x?.[k] ?? 0), 0);
    const natsSum = () =>
      servers.reduce((t, s) => ({ in: t.in + s.nats().in, out: t.out + s.nats().out }), { in: 0, out: 0 });
    const nats = natsSum();
    // Traffic that does not depend on messages (idle consumers' pull renewals, pings), measured
    // over an idle window after the load: per message counts what the load's rate of it leaves.
    await new Promise((r) => setTimeout(r, 1000));
    servers.forEach((s) => s.cpuStart());
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleCpuMs = (await Promise.all(servers.map((s) => s.cpuRead()))).reduce((a, b) => a + b, 0);
    const idle = natsSum();
    let atRate;
    if (withRate && ratePerReplica > 0) {
      // Same replicas, warm; the ids go on from the closed loop's so none is de-duplicated.
      const offset = 10_000_000;
      const rate = ratePerReplica * replicas;
      servers.forEach((s) => s.cpuStart());
      const paced = await pacedLoop((i, w) => send(offset + i, w), rate, durationMs);
      const ms = (await Promise.all(servers.map((s) => s.cpuRead()))).reduce((a, b) => a + b, 0);
      atRate = { rate, ...paced, cpuMsPerMsg: Number((ms / paced.total).toFixed(2)) };
    }
    // A caller that got no reply: did its message run? Its id is in its session's processed ids
    // (a `p:` field of the session hash) once it committed. Read before the run's keys are deleted.
    // The first few only: each lookup scans the run's keys.
    for (const f of failures.slice(0, 20)) f.committed = await committedInRedis(f.userId, f.messageId);
    if (failures.length)
      process.stderr.write(
        `${failures.length} unanswered, the first: ${JSON.stringify(failures.slice(0, 20))}\n`,
      );
    const background = (n) => (n * durationMs) / IDLE_MS;
    const per = (n) => Number((n / result.total).toFixed(2));
    return {
      target: label,
      replicas,
      ...result,
      cpuMsPerMsg: per(cpuMs),
      redisTripsPerMsg: per(redisTrips),
      natsOutPerMsg: per(nats.out - background(idle.out)),
      natsInPerMsg: per(nats.in - background(idle.in)),
      natsOutPerMsgWithIdle: per(nats.out),
      natsInPerMsgWithIdle: per(nats.in),
      // Where the CPU goes, per message (µs) and per replica: user/system split, GC, wake-ups.
      userUsPerMsg: Math.round((statSum('userMs') * 1000) / result.total),
      systemUsPerMsg: Math.round((statSum('systemMs') * 1000) / result.total),
      gcPerMsg: Number((statSum('gcN') / result.total).toFixed(3)),
      gcUsPerMsg: Math.round((statSum('gcMs') * 1000) / result.total),
      wakeupsPerMsg: Number((statSum('voluntaryCs') / result.total).toFixed(2)),
      preemptionsPerMsg: Number((statSum('involuntaryCs') / result.total).toFixed(2)),
      loopActiveUsPerMsg: Math.round((statSum('eluActiveMs') * 1000) / result.total),
      /** All replicas' CPU while idle, ms per second: the upkeep that does not depend on messages. */
      idleCpuMsPerSec: Math.round((idleCpuMs * 1000) / IDLE_MS),
      /** Calls that failed (a 504 is a reply not received in time), and whether their message committed. */
      failures: failures.slice(0, 20),
      failed: failures.length,
      /** The same replicas at `--rate` messages/s each (closed-loop figures above are at saturation). */
      atRate,
      cpuMsPerMsgAtRate: atRate?.cpuMsPerMsg,
      perReplica: stats,
      natsIdlePerSec: {
        out: Math.round((idle.out * 1000) / IDLE_MS),
        in: Math.round((idle.in * 1000) / IDLE_MS),
      },
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
  }
}

const natsEnv = {
  ...(partitions ? { GREENTIC_NATS_PARTITIONS: partitions } : {}),
  GREENTIC_BUS: 'nats',
  GREENTIC_SESSIONS: 'redis',
  NATS_URL,
  REDIS_URL,
  GREENTIC_NATS_STREAM_PREFIX: STREAM_PREFIX,
  GREENTIC_NATS_SUBJECT_PREFIX: SUBJECT_PREFIX,
  GREENTIC_REDIS_PREFIX: REDIS_PREFIX,
};

async function bareScenario() {
  const sp = SUBJECT_PREFIX;
  await jsm.streams.add({
    name: `${STREAM_PREFIX}_BARE_IN`,
    subjects: [`${sp}.bare.in`],
    retention: 'interest',
    duplicate_window: 120e9,
  });
  await jsm.streams.add({
    name: `${STREAM_PREFIX}_BARE_OUT`,
    subjects: [`${sp}.bare.out`],
    max_age: 600e9,
    duplicate_window: 120e9,
  });
  const worker = await startProcess(path.join(root, 'bench/distributed/bare-loop.mjs'), [
    NATS_URL,
    REDIS_URL,
    STREAM_PREFIX,
    sp,
  ]);
  const js = jetstream(nc);
  const waiting = new Map();
  const sub = nc.subscribe(`${sp}.bare.out`, {
    callback: (_err, m) => {
      const { inReplyTo } = m.json();
      const w = waiting.get(inReplyTo);
      if (w) {
        waiting.delete(inReplyTo);
        w();
      }
    },
  });
  try {
    const send = async (i) => {
      const id = `bare-${i}`;
      const replied = new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiting.delete(id);
          reject(new Error('timeout'));
        }, 10_000);
        waiting.set(id, () => {
          clearTimeout(t);
          resolve();
        });
      });
      await js.publish(
        `${sp}.bare.in`,
        JSON.stringify({ id, sessionKey: `bench:webhook:u${i}:u${i}`, text: `m${i}` }),
        {
          msgID: id,
        },
      );
      await replied;
    };
    const result = await closedLoop(send, worker.cpuStart);
    const cpuMs = await worker.cpuRead();
    // The same rate as each replica's --rate window: the baseline for CPU per message below
    // saturation, where each message has a wake-up (and its syscalls) more nearly to itself.
    let atRate;
    if (ratePerReplica > 0) {
      worker.cpuStart();
      const paced = await pacedLoop((i) => send(10_000_000 + i), ratePerReplica, durationMs);
      atRate = {
        rate: ratePerReplica,
        ...paced,
        cpuMsPerMsg: Number(((await worker.cpuRead()) / paced.total).toFixed(2)),
      };
    }
    return {
      target: 'bare NATS→Redis→NATS loop',
      replicas: 1,
      ...result,
      cpuMsPerMsg: Number((cpuMs / result.total).toFixed(2)),
      atRate,
      cpuMsPerMsgAtRate: atRate?.cpuMsPerMsg,
    };
  } finally {
    sub.unsubscribe();
    await worker.stop();
  }
}

/**
 * Round trips to Redis from the runners: commands MONITOR sees from a client (a script is one; the
 * commands it runs inside show as `lua` and are not counted), on this run's keys only (lease
 * heartbeats included). MONITOR is read off a plain socket, one `+<time> [<db> <source>] "cmd" …`
 * line per command: ioredis's own monitor() failed on some feed lines with an error thrown where
 * no listener could catch it, and when it failed while starting, the connection it had opened
 * stayed open with nothing left to close it, so the bench finished, wrote its results and then
 * never exited (three runs on 2026-12-05/06 that looked like hangs).
 */
function redisRoundTrips() {
  const url = new URL(REDIS_URL);
  if (url.protocol !== 'redis:')
    throw new Error(`the MONITOR count needs a redis:// URL, not ${url.protocol}`);
  const socket = net.connect(Number(url.port || 6379), url.hostname || '127.0.0.1');
  const arg = ` "${REDIS_PREFIX}`;
  let n = 0;
  let failed;
  let rest = '';
  socket.setEncoding('utf8');
  socket.on('error', (e) => (failed = e));
  socket.on('data', (chunk) => {
    const lines = (rest + chunk).split('\r\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      // An error reply (a refused AUTH or MONITOR) makes the count unknown, not zero.
      if (line.startsWith('-')) failed ??= new Error(line.slice(1));
      else if (line.startsWith('+') && !/^\+\S+ \[\d+ lua\]/.test(line) && line.includes(arg)) n++;
    }
  });
  // The URL's credentials, as ioredis would send them (RESP arrays: a password may hold spaces).
  const auth = [url.username, url.password].filter(Boolean).map(decodeURIComponent);
  if (auth.length > 0) socket.write(respCommand('AUTH', ...auth));
  socket.write(respCommand('MONITOR'));
  return {
    stop: async () => {
      socket.destroy();
      if (failed) process.stderr.write(`MONITOR failed: ${failed.message}; Redis round trips unknown\n`);
      return failed ? NaN : n;
    },
  };
}

function respCommand(...args) {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
}

/** Whether a session hash of this run in Redis holds `messageId` among its processed ids (null: no such session). */
async function committedInRedis(userId, messageId) {
  let cursor = '0';
  let found = null;
  do {
    // The session hash: `{prefix}:{tenancy}:{…:{user}:{user}}:s`.
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${REDIS_PREFIX}:*:${userId}}:s`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) found = found || (await redis.hexists(key, `p:${messageId}`)) === 1;
  } while (cursor !== '0');
  return found;
}

async function deleteKeys(pattern) {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}

const memoryScenario = () =>
  runnerScenario(
    'runner, embedded memory bus',
    1,
    { GREENTIC_BUS: 'memory', GREENTIC_SESSIONS: 'memory' },
    true,
  );

const rows = [];
let failed;
try {
  if (only) {
    for (const n of only)
      rows.push(
        n === 'bare'
          ? await bareScenario()
          : n === 'memory'
            ? await memoryScenario()
            : await runnerScenario('runner, NATS + Redis', Number(n), natsEnv, true),
      );
  } else {
    rows.push(await bareScenario());
    rows.push(await memoryScenario());
    rows.push(await runnerScenario('runner, NATS + Redis', 1, natsEnv, true));
    rows.push(await runnerScenario('runner, NATS + Redis', 2, natsEnv, true));
    rows.push(await runnerScenario('runner, NATS + Redis', 3, natsEnv, true));
  }
} catch (e) {
  failed = e;
} finally {
  for (const s of ['INGRESS', 'EGRESS', 'DLQ', 'BARE_IN', 'BARE_OUT']) {
    await jsm.streams.delete(`${STREAM_PREFIX}_${s}`).catch(() => undefined);
  }
  await deleteKeys(`${REDIS_PREFIX}*`);
  await deleteKeys(`${SUBJECT_PREFIX}:bare:*`);
  redis.disconnect();
  await nc.close();
  agent.destroy();
}
// Said and ended here, whatever the error.
if (failed) {
  process.stderr.write(`bench/distributed failed: ${failed?.stack ?? failed}\n`);
  process.exit(1);
}

const diagColumns = [
  'target',
  'replicas',
  'msgPerSec',
  'cpuMsPerMsg',
  'userUsPerMsg',
  'systemUsPerMsg',
  'gcPerMsg',
  'gcUsPerMsg',
  'wakeupsPerMsg',
  'preemptionsPerMsg',
  'loopActiveUsPerMsg',
  'natsOutPerMsg',
  'idleCpuMsPerSec',
  'total',
  'cpuMsPerMsgAtRate',
];
if (only) {
  writeSync(
    1,
    `${durationMs / 1000}s each (+${warmupMs / 1000}s warm-up), load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' / ')}\n`,
  );
  writeSync(1, table(rows, diagColumns) + '\n');
  for (const r of rows)
    writeSync(
      1,
      `${r.target} × ${r.replicas}: ${JSON.stringify(r.perReplica)}\nat rate: ${JSON.stringify(r.atRate)}\n`,
    );
  process.exit(0);
}
const [bare, memory, one, two, three] = rows;
for (const r of rows) r.vsBare = (r.msgPerSec / bare.msgPerSec).toFixed(2);
const ratios = {
  twoReplicasVsOne: Number((two.msgPerSec / one.msgPerSec).toFixed(2)),
  runnerVsBare: Number((one.msgPerSec / bare.msgPerSec).toFixed(2)),
  natsRedisVsMemory: Number((one.msgPerSec / memory.msgPerSec).toFixed(2)),
  cpuPerMsgTwoVsOne: Number((two.cpuMsPerMsg / one.cpuMsPerMsg).toFixed(2)),
  cpuPerMsgThreeVsOne: Number((three.cpuMsPerMsg / one.cpuMsPerMsg).toFixed(2)),
  /** One replica's CPU per message over the bare loop's, saturated and at --rate. */
  cpuPerMsgRunnerVsBare: Number((one.cpuMsPerMsg / bare.cpuMsPerMsg).toFixed(2)),
  ...(one.atRate && bare.atRate
    ? { cpuPerMsgRunnerVsBareAtRate: Number((one.cpuMsPerMsgAtRate / bare.cpuMsPerMsgAtRate).toFixed(2)) }
    : {}),
  ...(one.atRate
    ? {
        cpuPerMsgTwoVsOneAtRate: Number((two.cpuMsPerMsgAtRate / one.cpuMsPerMsgAtRate).toFixed(2)),
        cpuPerMsgThreeVsOneAtRate: Number((three.cpuMsPerMsgAtRate / one.cpuMsPerMsgAtRate).toFixed(2)),
      }
    : {}),
};
// Issue #20's targets: CPU per message on the NATS + Redis path, flat as replicas are added, and
// the traffic per message (NATS counted at the replicas: the load generator speaks HTTP).
const target = {
  cpuMsPerMsgOneReplicaAtMost: 0.25,
  cpuPerMsgTwoVsOneAtMost: 1.1,
  redisTripsPerMsgAtMost: 1,
  natsOutPerMsgAtMost: 3,
  natsInPerMsgAtMost: 5,
};
const met = {
  cpuMsPerMsgOneReplica: one.cpuMsPerMsg <= target.cpuMsPerMsgOneReplicaAtMost,
  cpuPerMsgTwoVsOne: ratios.cpuPerMsgTwoVsOne <= target.cpuPerMsgTwoVsOneAtMost,
  ...(ratios.cpuPerMsgTwoVsOneAtRate !== undefined
    ? { cpuPerMsgTwoVsOneAtEqualLoad: ratios.cpuPerMsgTwoVsOneAtRate <= target.cpuPerMsgTwoVsOneAtMost }
    : {}),
  redisTripsPerMsg:
    Math.max(one.redisTripsPerMsg, two.redisTripsPerMsg, three.redisTripsPerMsg) <=
    target.redisTripsPerMsgAtMost + 0.05,
  natsOutPerMsg:
    Math.max(one.natsOutPerMsg, two.natsOutPerMsg, three.natsOutPerMsg) <= target.natsOutPerMsgAtMost,
  natsInPerMsg: Math.max(one.natsInPerMsg, two.natsInPerMsg, three.natsInPerMsg) <= target.natsInPerMsgAtMost,
};
// This machine has 2 cores shared by NATS, Redis, the load generator and the replicas, so adding
// replicas cannot show more throughput here: what the CPU per message predicts for N replicas with
// a core each is the figure to compare.
const predicted = [1, 2, 3, 4, 8].map((n) => ({
  replicas: n,
  msgPerSecPredicted: Math.round((n * 1000) / Math.max(one.cpuMsPerMsg, two.cpuMsPerMsg, three.cpuMsPerMsg)),
}));
const loadAverage = os.loadavg().map((x) => Number(x.toFixed(2)));
process.stdout.write(
  `\nend to end (accept → reply to the waiting caller), ${concurrency} concurrent conversations, ${durationMs / 1000}s each ` +
    `(+${warmupMs / 1000}s warm-up), ${os.cpus().length} CPUs shared by everything, partitions ${partitions ?? 64}\n`,
);
process.stdout.write(
  table(rows, [
    'target',
    'replicas',
    'msgPerSec',
    'p50Ms',
    'p99Ms',
    'vsBare',
    'cpuMsPerMsg',
    'redisTripsPerMsg',
    'natsOutPerMsg',
    'natsInPerMsg',
    'errors',
    'total',
  ]) + '\n',
);
process.stdout.write(
  'cpuMsPerMsg: CPU time of the worker process(es) per message (runner replicas, or the bare worker); NATS, Redis and the load generator excluded.\n' +
    "redisTripsPerMsg: round trips from the runners to Redis per message (a script is one; lease heartbeats included); natsOut/InPerMsg: messages the replicas' NATS connections sent/received per message (publishes, acks, pulls, replies), less the idle rate (pull renewals, pings: natsIdlePerSec in the JSON, measured over 3 s after each load; natsOut/InPerMsgWithIdle keep it in).\n",
);
const mark = (ok) => (ok ? 'met' : 'NOT met');
const paced = rows.filter((r) => r.atRate);
if (paced.length) {
  process.stdout.write(
    `\nthe same workers at ${ratePerReplica} msg/s each (below saturation at every replica count), ${durationMs / 1000}s each\n` +
      table(
        paced.map((r) => ({ target: r.target, replicas: r.replicas, ...r.atRate })),
        ['target', 'replicas', 'rate', 'msgPerSec', 'p50Ms', 'p99Ms', 'cpuMsPerMsg', 'errors', 'total'],
      ) +
      '\n' +
      `CPU per message of 1 replica over the bare loop's: ${ratios.cpuPerMsgRunnerVsBare}× saturated, ${ratios.cpuPerMsgRunnerVsBareAtRate ?? '–'}× at ${ratePerReplica} msg/s\n` +
      `CPU per message at ${ratePerReplica} msg/s per replica: 2 vs 1 replica ${ratios.cpuPerMsgTwoVsOneAtRate}× (target ≤ ${target.cpuPerMsgTwoVsOneAtMost}×, at equal load per replica: ${mark(met.cpuPerMsgTwoVsOneAtEqualLoad)}), 3 vs 1 ${ratios.cpuPerMsgThreeVsOneAtRate}×\n`,
  );
}
process.stdout.write(
  `CPU per message, 1 replica: ${one.cpuMsPerMsg} ms (target ≤ ${target.cpuMsPerMsgOneReplicaAtMost}: ${mark(met.cpuMsPerMsgOneReplica)}); ` +
    `2 vs 1 replica, closed loop (both cores saturated): ${ratios.cpuPerMsgTwoVsOne}× (target ≤ ${target.cpuPerMsgTwoVsOneAtMost}×: ${mark(met.cpuPerMsgTwoVsOne)}); 3 vs 1: ${ratios.cpuPerMsgThreeVsOne}×\n` +
    `Redis round trips per message ≤ ${target.redisTripsPerMsgAtMost}: ${mark(met.redisTripsPerMsg)}; NATS out ≤ ${target.natsOutPerMsgAtMost}: ${mark(met.natsOutPerMsg)}; NATS in ≤ ${target.natsInPerMsgAtMost}: ${mark(met.natsInPerMsg)}\n` +
    `predicted msg/s for N replicas with a core each (1000 / worst CPU ms per message × N): ${predicted.map((p) => `${p.replicas}: ${p.msgPerSecPredicted}`).join(', ')}\n` +
    `machine load average ${loadAverage.join(' / ')}\n`,
);
const file = writeResults('distributed', {
  concurrency,
  durationS: durationMs / 1000,
  ratePerReplica,
  cpus: os.cpus().length,
  loadAverage,
  partitions: partitions ? Number(partitions) : 64,
  rows,
  ratios,
  target,
  met,
  predicted,
});
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
// The results are written: end here even if a connection were left open by mistake.
process.exit(0);
