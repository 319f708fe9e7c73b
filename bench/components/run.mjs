// bench/components: the cost of running a component call in the pool, against the same call made
// directly on jco's transpiled output in this thread, and against the floor of any worker design
// (a bare worker_threads round trip), all measured in the same run.
//
//   floor    bare worker echo: postMessage round trip, and a SharedArrayBuffer + Atomics round trip
//   direct   jco's transpiled component called in the main thread (no pool, no isolation), and
//            the in-process runtime (the same marshalling as the pool's worker)
//   pool     one caller, one call at a time, per channel (atomics | message) and polling;
//            direct and pool variants run in interleaved rounds (the machine's load drifts)
//   cold     prepare + first call on a fresh runtime: transpile cache empty vs already on disk
//   load     tenants × concurrent callers, per channel
//
// Components: the WAT echo (a call costs microseconds, so the pool's own cost shows) and a
// componentize-js component (js-v01, upper-cases the message). `--quick` shortens every phase.
//
//   weather  the demo's weather_api call (forecast_weather { q: Paris, days: 3 }), direct and pooled:
//            before (bench/components/fixtures/weather-before, today's source before the component
//            SDK), after (the demo's weather.ts on the SDK) and the floor (the same world, a fixed
//            output, no decoding or logic: fixtures/weather-floor), and the in-process runtime
//            (the pool worker's marshalling without the thread hop). `--weather` runs only this
//            part and the floor breakdown.
//   floor    the floor broken down (floor-breakdown.mjs): entry and exit, each part of invoke's
//   parts    parameters and result, import bindings 'hybrid' vs 'js', and a CPU profile of
//            invoke by where its time goes. `--floor` runs only this part.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { root, table, writeResults } from '../lib/harness.mjs';
import { floorBreakdown } from './floor-breakdown.mjs';

const quick = process.argv.includes('--quick');
const weatherOnly = process.argv.includes('--weather');
const floorOnly = process.argv.includes('--floor');
const SEQ_CALLS = quick ? 5_000 : 20_000;
const LOAD_MS = quick ? 1_500 : 4_000;
const COLD_RUNS = quick ? 2 : 4;

const dist = (p) => import(path.join(root, 'dist', p));
const { assembleWatFile, buildJsComponent } = await dist('wasm/component-builder.js');
const { TranspileCache } = await dist('wasm/transpile-cache.js');
const { createWasiSandbox } = await dist('wasm/wasi-sandbox.js');
const { PooledComponentRuntime } = await dist('wasm/pool/pooled-component.runtime.js');
const { JcoComponentRuntime } = await dist('wasm/jco-component.runtime.js');
const { Logger } = await import('@nestjs/common');
Logger.overrideLogger(['error']);

const echoWasm = await assembleWatFile(path.join(root, 'test/fixtures/components/echo.wat'));
process.stderr.write('building the JS component (cached by source hash; ~20 s the first time)...\n');
const jsWasm = await buildJsComponent({
  sourcePath: path.join(root, 'test/fixtures/components/js-v01/component.js'),
  witPath: path.join(root, 'wit/component-0.1.0'),
  worldName: 'component',
});
const COMPONENTS = {
  'wat-echo': { name: 'echo', bytes: new Uint8Array(readFileSync(echoWasm)) },
  'js-v01': { name: 'js-v01', bytes: new Uint8Array(readFileSync(jsWasm)) },
};

const weatherDir = path.join(root, 'examples/demo/packs/demo/components/weather_api');
const weatherBuild = async (sourcePath) =>
  new Uint8Array(
    readFileSync(
      await buildJsComponent({ sourcePath, witPath: path.join(weatherDir, 'wit'), worldName: 'component' }),
    ),
  );
process.stderr.write('building the weather components (cached per machine; ~30 s each the first time)...\n');
const WEATHER = {
  'weather before (hand-written CBOR)': await weatherBuild(
    path.join(root, 'bench/components/fixtures/weather-before/weather.js'),
  ),
  'weather after (component SDK)': await weatherBuild(path.join(weatherDir, 'weather.ts')),
  'floor (same world, fixed output)': await weatherBuild(
    path.join(root, 'bench/components/fixtures/weather-floor/floor.js'),
  ),
};

const ctx = {
  flowId: 'bench',
  nodeId: 'call',
  messageId: 'm-1',
  userId: 'u-1',
  sessionKey: 't:bench:c:u',
  text: 'hello world',
};
const tenant = (id) => ({ tenantId: id, envId: 'dev' });

function stats(samplesUs, totalMs, calls) {
  const s = [...samplesUs].sort((a, b) => a - b);
  const at = (p) => s[Math.min(s.length - 1, Math.floor(s.length * p))];
  return {
    p50Us: +at(0.5).toFixed(1),
    p99Us: +at(0.99).toFixed(1),
    callsPerSec: Math.round(calls / (totalMs / 1000)),
  };
}

/** Sequential calls of `fn` (async), per-call latency. */
/**
 * Warms each variant up, then runs them in turn for `rounds` rounds of `perRound` calls, so every
 * variant sees the same machine state; leaves each one's latencies (µs), per-round p50s and time.
 */
async function interleave(variants, { warmup, rounds, perRound }) {
  for (const v of variants) {
    for (let i = 0; i < warmup; i++) await v.fn();
    Object.assign(v, { p50s: [], samples: [], ms: 0 });
  }
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      const lat = new Array(perRound);
      const t0 = performance.now();
      for (let i = 0; i < perRound; i++) {
        const s = performance.now();
        await v.fn();
        lat[i] = (performance.now() - s) * 1000;
      }
      v.ms += performance.now() - t0;
      v.samples.push(...lat);
      v.p50s.push(stats(lat, 1, 1).p50Us);
    }
  }
}

async function sequential(fn, n = SEQ_CALLS) {
  for (let i = 0; i < Math.min(1000, n / 10); i++) await fn(i);
  const lat = new Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn(i);
    lat[i] = (performance.now() - s) * 1000;
  }
  return stats(lat, performance.now() - t0, n);
}

// ---- floor: bare worker round trips --------------------------------------------------------

async function floorPostMessage() {
  const w = new Worker(
    `const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m));`,
    { eval: true },
  );
  await new Promise((r) => w.once('online', r));
  const msg = { id: 1, content: 'hello world', sender: 'u-1' };
  const r = await sequential(
    () =>
      new Promise((resolve) => {
        w.once('message', resolve);
        w.postMessage(msg);
      }),
  );
  await w.terminate();
  return r;
}

async function floorAtomics() {
  const sab = new SharedArrayBuffer(64);
  const ctl = new Int32Array(sab);
  const req = new MessageChannel();
  const res = new MessageChannel();
  const w = new Worker(
    `const { workerData, receiveMessageOnPort } = require('node:worker_threads');
     const { sab, reqPort, resPort } = workerData;
     const ctl = new Int32Array(sab);
     let done = 0;
     for (;;) {
       const n = Atomics.load(ctl, 0);
       if (n === done) { Atomics.wait(ctl, 0, done); continue; }
       resPort.postMessage(receiveMessageOnPort(reqPort).message);
       Atomics.store(ctl, 1, ++done);
       Atomics.notify(ctl, 1);
     }`,
    {
      eval: true,
      workerData: { sab, reqPort: req.port2, resPort: res.port1 },
      transferList: [req.port2, res.port1],
    },
  );
  await new Promise((r) => w.once('online', r));
  let sent = 0;
  const msg = { id: 1, content: 'hello world', sender: 'u-1' };
  const r = await sequential(async () => {
    req.port1.postMessage(msg);
    Atomics.store(ctl, 0, ++sent);
    Atomics.notify(ctl, 0);
    while (Atomics.load(ctl, 1) < sent) {
      const x = Atomics.waitAsync(ctl, 1, sent - 1);
      if (x.async) await x.value;
    }
    return receiveMessageOnPort(res.port2).message;
  });
  await w.terminate();
  return r;
}

// ---- direct: jco's output in this thread ---------------------------------------------------

async function direct(key) {
  const cache = new TranspileCache();
  const artifact = await cache.load(COMPONENTS[key].bytes, key);
  const instance = await artifact.instantiate(artifact.imports.length ? createWasiSandbox() : {});
  const message = { id: 'm-1', content: 'hello world', sender: 'u-1', timestamp: 0n };
  // Awaited like a pool call, so both sides pay the same promise overhead.
  return { fn: async () => instance.execute(message), close: async () => undefined };
}

/** The foundation's in-process runtime: the worker's marshalling (message, JSON data), no thread hop. */
async function inProcess(key) {
  const runtime = new JcoComponentRuntime({ transpileCache: new TranspileCache() });
  const c = COMPONENTS[key];
  const p = await runtime.prepare({ name: c.name, version: '1', bytes: c.bytes });
  const call = { component: p, operation: 'execute', input: undefined, ctx };
  return { fn: () => runtime.invoke(tenant('t1'), call), close: () => runtime.close() };
}

// ---- pool -------------------------------------------------------------------------------------

async function poolRuntime(settings) {
  const runtime = new PooledComponentRuntime({
    settings: { deadlineMs: 10_000, minWorkers: 1, maxWorkers: 2, ...settings },
  });
  const prepared = {};
  for (const [key, c] of Object.entries(COMPONENTS)) {
    prepared[key] = await runtime.prepare({ name: c.name, version: '1', bytes: c.bytes });
  }
  return { runtime, prepared };
}

const POOL_VARIANTS = [
  {
    label: 'atomics, adaptive polling (default with > 2 cores)',
    channel: 'atomics',
    spinUs: 200,
    mainSpinUs: 200,
  },
  { label: 'atomics, no polling (default with ≤ 2 cores)', channel: 'atomics', spinUs: 0, mainSpinUs: 0 },
  { label: 'atomics, main polls only', channel: 'atomics', spinUs: 0, mainSpinUs: 200 },
  { label: 'message (postMessage per call)', channel: 'message', spinUs: 0, mainSpinUs: 0 },
];

/**
 * One caller, one call at a time, every variant in rounds (variant A, B, C, D, A, B...), so a
 * machine whose load drifts during the run treats them alike. p50 is the median of the rounds'
 * p50s, p99 and calls/s are over all samples.
 */
async function pooledRounds(key) {
  const rounds = quick ? 3 : 7;
  const perRound = Math.round(SEQ_CALLS / rounds);
  const variants = [
    { label: 'direct: jco output, main thread', ...(await direct(key)) },
    { label: 'direct: in-process runtime (same marshalling)', ...(await inProcess(key)) },
  ];
  for (const v of POOL_VARIANTS) {
    const { runtime, prepared } = await poolRuntime(v);
    const call = { component: prepared[key], operation: 'execute', input: undefined, ctx };
    variants.push({
      ...v,
      label: `pool: 1 caller, ${v.label}`,
      fn: () => runtime.invoke(tenant('t1'), call),
      close: () => runtime.close(),
    });
  }
  await interleave(variants, { warmup: 500, rounds, perRound });
  const out = [];
  for (const v of variants) {
    await v.close();
    const all = stats(v.samples, v.ms, v.samples.length);
    const p50s = [...v.p50s].sort((a, b) => a - b);
    out.push({ label: v.label, pool: v.channel !== undefined, ...all, p50Us: p50s[p50s.length >> 1] });
  }
  return out;
}

async function load(channel, spinUs, key, tenants, callers) {
  const { runtime, prepared } = await poolRuntime(spinUs === undefined ? { channel } : { channel, spinUs });
  const call = { component: prepared[key], operation: 'execute', input: undefined, ctx };
  for (let t = 0; t < tenants; t++) await runtime.invoke(tenant(`t${t}`), call);
  const lat = [];
  let calls = 0;
  const until = performance.now() + LOAD_MS;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: tenants * callers }, async (_, i) => {
      const t = tenant(`t${i % tenants}`);
      while (performance.now() < until) {
        const s = performance.now();
        await runtime.invoke(t, call);
        lat.push((performance.now() - s) * 1000);
        calls++;
      }
    }),
  );
  const r = stats(lat, performance.now() - t0, calls);
  const workers = Object.values(runtime.tenantStats()).reduce((n, s) => n + s.workerStarts, 0);
  await runtime.close();
  return { ...r, workers };
}

async function cold(key) {
  const out = { uncachedMs: [], cachedMs: [] };
  for (let i = 0; i < COLD_RUNS; i++) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-cache-'));
    for (const phase of ['uncachedMs', 'cachedMs']) {
      const t0 = performance.now();
      const runtime = new PooledComponentRuntime({
        transpileCache: new TranspileCache(dir),
        settings: { minWorkers: 0 },
      });
      const p = await runtime.prepare({
        name: COMPONENTS[key].name,
        version: '1',
        bytes: COMPONENTS[key].bytes,
      });
      await runtime.invoke(tenant('cold'), { component: p, operation: 'execute', input: undefined, ctx });
      out[phase].push(performance.now() - t0);
      await runtime.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
  const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  return { uncachedMs: Math.round(median(out.uncachedMs)), cachedMs: Math.round(median(out.cachedMs)) };
}

// ---- weather: the demo's component call, before / after / floor --------------------------

const WEATHER_INPUT = { q: 'Paris', days: 3 };

/** The envelope of a weather call, built once (as a caller that reuses it would). */
async function weatherEnvelope() {
  const { encodeCbor } = await dist('wasm/cbor.js');
  return {
    ctx: {
      tenantId: 't1',
      teamId: undefined,
      userId: 'u-1',
      envId: 'dev',
      traceId: '',
      correlationId: 'm-1',
      deadlineMs: BigInt(Date.now() + 3_600_000),
      attempt: 0,
      idempotencyKey: undefined,
      i18nId: 'en',
    },
    flowId: 'bench',
    stepId: 'call',
    componentId: 'weather_api',
    attempt: 0,
    payloadCbor: encodeCbor(WEATHER_INPUT),
    metadataCbor: undefined,
  };
}

/**
 * Per component: jco's output called in this thread (the envelope built once), the in-process
 * runtime (the runtime's whole call: envelope, CBOR both ways, no thread) and the pool (the same,
 * plus the worker hop). All variants in interleaved rounds, p50 = median of the rounds' p50s.
 */
async function weatherRounds() {
  const { V06_NODE } = await dist('wasm/world-detect.js');
  const rounds = quick ? 3 : 7;
  const perRound = Math.round((quick ? 2_000 : 10_000) / rounds);
  const cache = new TranspileCache();
  const pool = new PooledComponentRuntime({ settings: { deadlineMs: 10_000, minWorkers: 1, maxWorkers: 2 } });
  const inProcessRuntime = new JcoComponentRuntime({ transpileCache: new TranspileCache() });
  const envelope = await weatherEnvelope();
  const variants = [];
  for (const [name, bytes] of Object.entries(WEATHER)) {
    const artifact = await cache.load(bytes, 'weather_api');
    const instance = await artifact.instantiate(artifact.imports.length ? createWasiSandbox() : {});
    const node = instance[V06_NODE];
    variants.push({
      component: name,
      label: 'direct: jco output, main thread',
      fn: async () => node.invoke('forecast_weather', envelope),
    });
    const local = await inProcessRuntime.prepare({ name: 'weather_api', version: '1', bytes });
    const localCall = { component: local, operation: 'forecast_weather', input: WEATHER_INPUT, ctx };
    variants.push({
      component: name,
      label: 'direct: in-process runtime (same marshalling)',
      fn: () => inProcessRuntime.invoke(tenant('t1'), localCall),
    });
    const prepared = await pool.prepare({ name: 'weather_api', version: '1', bytes });
    const call = { component: prepared, operation: 'forecast_weather', input: WEATHER_INPUT, ctx };
    variants.push({
      component: name,
      label: 'pool: 1 caller (default settings)',
      fn: () => pool.invoke(tenant('t1'), call),
    });
  }
  await interleave(variants, { warmup: 300, rounds, perRound });
  await pool.close();
  await inProcessRuntime.close();
  const out = variants.map((v) => {
    const p50s = [...v.p50s].sort((a, b) => a - b);
    return {
      what: `weather: ${v.label}`,
      component: v.component,
      ...stats(v.samples, v.ms, v.samples.length),
      p50Us: p50s[p50s.length >> 1],
    };
  });
  const kindOf = (r) => (r.what.includes('pool') ? 'pool' : r.what.includes('in-process') ? 'local' : 'jco');
  const find = (component, kind) => out.find((r) => r.component === component && kindOf(r) === kind);
  const floorName = 'floor (same world, fixed output)';
  for (const r of out) {
    r.vsFloor = +(r.p50Us / find(floorName, kindOf(r)).p50Us).toFixed(2);
    if (kindOf(r) !== 'jco') r.vsDirect = +(r.p50Us / find(r.component, 'jco').p50Us).toFixed(2);
    if (kindOf(r) === 'pool') r.vsInProcess = +(r.p50Us / find(r.component, 'local').p50Us).toFixed(2);
  }
  return out;
}

const WEATHER_COLUMNS = [
  'what',
  'component',
  'p50Us',
  'p99Us',
  'callsPerSec',
  'vsFloor',
  'vsDirect',
  'vsInProcess',
];
const FLOOR_COLUMNS = ['what', 'mode', 'p50Us', 'p10Us', 'p10OverNothingUs', 'detail'];

/** The targets for the weather call, against this run's rows. */
function weatherTargets(weatherRows) {
  const after = (kind) =>
    weatherRows.find((r) => r.component.startsWith('weather after') && r.what.includes(kind));
  const demo = after('jco output').vsFloor;
  const pooled = after('pool').vsDirect;
  return {
    weatherOverFloorDirect: { target: 1.5, measured: demo, met: demo <= 1.5 },
    weatherPooledOverDirect: {
      target: 1.2,
      measured: pooled,
      met: pooled <= 1.2,
      // the runtime's marshalling (envelope, CBOR both ways) without the thread hop
      inProcessOverDirect: after('in-process').vsDirect,
    },
  };
}

function printFloor(floor) {
  process.stdout.write(table(floor.rows, FLOOR_COLUMNS) + '\n\n');
  process.stdout.write(
    "invoke's self time by part (CPU profile, import bindings 'hybrid'):\n" +
      table(floor.profile, ['part', 'usPerCall', 'share']) +
      '\n\n',
  );
}

if (floorOnly || weatherOnly) {
  const floor = await floorBreakdown({ quick, envelope: await weatherEnvelope() });
  printFloor(floor);
  const weather = floorOnly ? [] : await weatherRounds();
  let targets;
  if (!floorOnly) {
    process.stdout.write(table(weather, WEATHER_COLUMNS) + '\n');
    targets = weatherTargets(weather);
    process.stdout.write('\ntargets: ' + JSON.stringify(targets, null, 2) + '\n');
  }
  const file = writeResults(floorOnly ? 'components-floor' : 'components-weather', {
    quick,
    cpus: os.cpus().length,
    loadAverage: os.loadavg(),
    rows: weather,
    floorParts: floor.rows,
    floorProfile: floor.profile,
    targets,
  });
  process.stdout.write(`results: ${path.relative(root, file)}\n`);
  process.exit(0);
}

// ---- run ------------------------------------------------------------------------------------

const rows = [];
const add = (what, component, r, extra = {}) => rows.push({ what, component, ...r, ...extra });

add('floor: worker postMessage echo', '-', await floorPostMessage());
add('floor: worker SAB+Atomics echo', '-', await floorAtomics());
const pooledRows = {};
for (const key of Object.keys(COMPONENTS)) {
  const measured = await pooledRounds(key);
  const [raw, inproc] = measured;
  pooledRows[key] = measured.filter((r) => r.pool);
  for (const r of measured) {
    add(
      r.label,
      key,
      { p50Us: r.p50Us, p99Us: r.p99Us, callsPerSec: r.callsPerSec },
      r.pool
        ? { ratio: +(r.p50Us / raw.p50Us).toFixed(2), vsInProcess: +(r.p50Us / inproc.p50Us).toFixed(2) }
        : {},
    );
  }
  pooledRows[key].raw = raw;
  pooledRows[key].inproc = inproc;
}
for (const key of Object.keys(COMPONENTS)) {
  for (const channel of ['atomics', 'message']) {
    add(`load: 1 tenant × 50 callers, ${channel}`, key, await load(channel, undefined, key, 1, 50));
    add(`load: 2 tenants × 50 callers each, ${channel}`, key, await load(channel, undefined, key, 2, 50));
  }
}
const colds = {};
for (const key of Object.keys(COMPONENTS)) colds[key] = await cold(key);
const weatherRows = await weatherRounds();
rows.push(...weatherRows);
const floor = await floorBreakdown({ quick, envelope: await weatherEnvelope() });

const columns = [
  'what',
  'component',
  'p50Us',
  'p99Us',
  'callsPerSec',
  'ratio',
  'vsInProcess',
  'vsFloor',
  'vsDirect',
  'workers',
];
process.stdout.write(table(rows, columns) + '\n\n');
printFloor(floor);
process.stdout.write(
  table(
    Object.entries(colds).map(([component, c]) => ({ component, ...c })),
    ['component', 'uncachedMs', 'cachedMs'],
  ) + '\n',
);

const best = (key) => [...pooledRows[key]].sort((a, b) => a.p50Us - b.p50Us)[0];
const byDefault = (key) => pooledRows[key][0];
const watBest = byDefault('wat-echo');
const jsBest = byDefault('js-v01');
const oneTenant = rows.filter((r) => r.what.startsWith('load: 1 tenant') && r.component === 'wat-echo');
const targets = {
  watEchoP50Us: {
    target: 40,
    measured: watBest.p50Us,
    with: watBest.label,
    met: watBest.p50Us <= 40,
    bestVariant: best('wat-echo').label,
  },
  watEchoCallsPerSecOneTenant: {
    target: 25_000,
    measured: Math.max(...oneTenant.map((r) => r.callsPerSec)),
    met: Math.max(...oneTenant.map((r) => r.callsPerSec)) >= 25_000,
  },
  jsPoolOverDirect: {
    target: 1.5,
    measured: +(jsBest.p50Us / pooledRows['js-v01'].raw.p50Us).toFixed(2),
    vsInProcessRuntime: +(jsBest.p50Us / pooledRows['js-v01'].inproc.p50Us).toFixed(2),
    with: jsBest.label,
    bestVariant: best('js-v01').label,
    met: jsBest.p50Us / pooledRows['js-v01'].raw.p50Us <= 1.5,
  },
  ...weatherTargets(weatherRows),
};
process.stdout.write('\ntargets: ' + JSON.stringify(targets, null, 2) + '\n');
const file = writeResults('components', {
  quick,
  cpus: os.cpus().length,
  loadAverage: os.loadavg(),
  rows,
  floorParts: floor.rows,
  floorProfile: floor.profile,
  cold: colds,
  targets,
});
process.stdout.write(`results: ${path.relative(root, file)}\n`);
