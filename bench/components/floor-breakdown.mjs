// bench/components, floor breakdown: where the empty node-world call's time goes, in this process.
//
// fixtures/floor-probe builds one componentize-js component with the weather_api's `node`
// interface and a `probe` interface whose exports take or return one part of invoke's parameters
// and result and run no logic. Called directly on jco's output (as the weather rows' direct
// variant), in interleaved rounds, each sample the mean of a batch of calls:
//
//   nothing        jco's export trampoline + StarlingMonkey's entry and exit
//   take-*         + the host's lowering and the guest's lifting of that parameter
//   give-*         + the guest's lowering and the host's lifting of that result
//   invoke         the floor itself (node.invoke with the weather envelope, a fixed result)
//
// p50 and p10 of the batch means (the p10 moves least with the machine's load), each export
// twice: transpiled with the runner's options (import bindings 'hybrid', transpile-cache.ts)
// and with jco's default import bindings ('js'), so the difference is measured in the same run.
// Then a CPU profile of invoke (node:inspector, 50 µs sampling) splits its self time into jco's
// generated JS (host-side lowering/lifting and task bookkeeping), the core wasm (StarlingMonkey:
// the guest-side lifting, entry and exit), the WASI shim, and the garbage collector.
//
//   node bench/components/run.mjs --floor [--quick]     only this part
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { root } from '../lib/harness.mjs';

const dist = (p) => import(path.join(root, 'dist', p));
const PROBE_DIR = path.join(root, 'bench/components/fixtures/floor-probe');
const NODE_WIT = path.join(root, 'examples/demo/packs/demo/components/weather_api/wit/world.wit');

/** The floor probe, built like any component (per-machine cache): world.wit + probe.wit. */
export async function buildProbe() {
  const { buildJsComponent } = await dist('wasm/component-builder.js');
  const wit = mkdtempSync(path.join(os.tmpdir(), 'greentic-floor-probe-'));
  try {
    copyFileSync(NODE_WIT, path.join(wit, 'world.wit'));
    copyFileSync(path.join(PROBE_DIR, 'probe.wit'), path.join(wit, 'probe.wit'));
    const wasm = await buildJsComponent({
      sourcePath: path.join(PROBE_DIR, 'probe.js'),
      witPath: wit,
      worldName: 'floor-probe',
    });
    return new Uint8Array(readFileSync(wasm));
  } finally {
    rmSync(wit, { recursive: true, force: true });
  }
}

/**
 * jco's output for `bytes` with jco's default import bindings ('js'), otherwise the runner's
 * options, instantiated with the runner's WASI sandbox: the "before" of import bindings 'hybrid'.
 */
async function instantiateWithJsImportBindings(bytes) {
  const { transpile } = await import('@bytecodealliance/jco');
  const { createWasiSandbox, withWasiVersions } = await dist('wasm/wasi-sandbox.js');
  const out = await transpile(bytes, {
    name: 'component',
    instantiation: 'async',
    emitTypescriptDeclarations: false,
    base64Cutoff: 0,
    importBindings: 'js',
  });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-floor-js-'));
  const modules = new Map();
  for (const [name, file] of Object.entries(out.files)) {
    if (name.endsWith('.wasm')) modules.set(name, await WebAssembly.compile(file));
  }
  // As the transpile cache's patch level 1 (JCO_DEBUG unset): _debugLog never reads process.env.
  const js = new TextDecoder()
    .decode(out.files['component.js'])
    .replaceAll('if (!globalThis?.process?.env?.JCO_DEBUG) { return; }', 'return;');
  writeFileSync(path.join(dir, 'component.js'), js);
  const bindings = await import(pathToFileURL(path.join(dir, 'component.js')).href);
  rmSync(dir, { recursive: true, force: true });
  return bindings.instantiate(
    (name) => modules.get(name),
    withWasiVersions(createWasiSandbox(), out.imports),
  );
}

const PROBE_CALLS = [
  ['nothing', 'entry and exit (an export taking and returning nothing)', (p) => p.nothing()],
  ['take-string', "+ invoke's op string in", (p) => p.takeString('forecast_weather')],
  ['take-bytes', '+ the payload bytes in (12 B)', (p, e) => p.takeBytes(e.payloadCbor)],
  ['take-ctx', '+ the tenant-ctx record in', (p, e) => p.takeCtx(e.ctx)],
  [
    'take-envelope',
    "+ invoke's parameters in (op, envelope)",
    (p, e) => p.takeEnvelope('forecast_weather', e),
  ],
  ['give-result', '+ the invocation-result record out', (p) => p.giveResult()],
  ['give-outcome', '+ result<invocation-result, node-error> out', (p) => p.giveOutcome()],
];

/**
 * Interleaved rounds over `variants` ({ fn } synchronous calls); each sample is the mean of a
 * batch of `batch` calls (µs), so a µs-sized call is not lost in the timer's resolution. Leaves
 * every variant's samples in `v.samples`.
 */
function batchedRounds(variants, { rounds, batches, batch, warmup }) {
  for (const v of variants) {
    for (let i = 0; i < warmup; i++) v.fn();
    v.samples = [];
  }
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      for (let b = 0; b < batches; b++) {
        const t0 = performance.now();
        for (let i = 0; i < batch; i++) v.fn();
        v.samples.push(((performance.now() - t0) * 1000) / batch);
      }
    }
  }
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))];
};

/**
 * Self time of `fn` by where it runs, from a CPU profile of `ms` milliseconds of calls: jco's
 * generated bindings (component.js of the transpile cache), the core wasm, the WASI shim, the
 * garbage collector, the rest. µs per call.
 */
async function profileSelfTime(fn, ms) {
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 50 });
    await session.post('Profiler.start');
    let calls = 0;
    const until = performance.now() + ms;
    while (performance.now() < until) {
      for (let i = 0; i < 50; i++) fn();
      calls += 50;
    }
    const { profile } = await session.post('Profiler.stop');
    const nodes = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const parts = {
      "jco's generated JS (host lowering/lifting, task bookkeeping)": 0,
      'core wasm (StarlingMonkey: guest lifting, entry, exit)': 0,
      'WASI shim (preview2-shim)': 0,
      'garbage collector': 0,
      'other (V8 built-ins, bench loop)': 0,
    };
    const keys = Object.keys(parts);
    profile.samples.forEach((id, i) => {
      const frame = nodes.get(id);
      const url = frame.url;
      const key = /\/component\.js$/.test(url)
        ? keys[0]
        : url.startsWith('wasm://')
          ? keys[1]
          : url.includes('preview2-shim')
            ? keys[2]
            : frame.functionName === '(garbage collector)'
              ? keys[3]
              : keys[4];
      parts[key] += profile.timeDeltas[i];
    });
    // On a loaded machine a preempted thread's samples land where it stopped: read the shares.
    const total = Object.values(parts).reduce((a, b) => a + b, 0);
    return Object.entries(parts).map(([part, us]) => ({
      part,
      usPerCall: +(us / calls).toFixed(1),
      share: `${Math.round((100 * us) / total)} %`,
    }));
  } finally {
    session.disconnect();
  }
}

/**
 * The breakdown for invoke's `envelope` (the weather rows' one): `rows` (per probe export and
 * import-bindings mode: p50 and p10 of batch means, and the step over `nothing`), `profile`
 * (invoke's self time by part, with the runner's transpile).
 */
export async function floorBreakdown({ quick, envelope }) {
  const { TranspileCache } = await dist('wasm/transpile-cache.js');
  const { createWasiSandbox } = await dist('wasm/wasi-sandbox.js');
  const bytes = await buildProbe();
  const artifact = await new TranspileCache().load(bytes, 'floor-probe');
  const modes = {
    "import bindings 'hybrid' (runner)": await artifact.instantiate(createWasiSandbox()),
    "import bindings 'js' (jco's default)": await instantiateWithJsImportBindings(bytes),
  };
  const variants = [];
  for (const [mode, instance] of Object.entries(modes)) {
    for (const [name, what, call] of PROBE_CALLS) {
      variants.push({ mode, name, what, fn: () => call(instance.probe, envelope) });
    }
    variants.push({
      mode,
      name: 'invoke',
      what: 'the floor: node.invoke, fixed result',
      fn: () => instance.node.invoke('forecast_weather', envelope),
    });
  }
  batchedRounds(variants, {
    rounds: quick ? 5 : 15,
    batches: quick ? 4 : 8,
    batch: 50,
    warmup: 500,
  });
  const rows = variants.map((v) => ({
    what: `floor part: ${v.name}`,
    mode: v.mode,
    detail: v.what,
    p50Us: +quantile(v.samples, 0.5).toFixed(1),
    p10Us: +quantile(v.samples, 0.1).toFixed(1),
  }));
  for (const r of rows) {
    const nothing = rows.find((x) => x.mode === r.mode && x.what === 'floor part: nothing');
    // from p10: on a shared machine preemption only adds, and the low end of the batches moves least
    if (r !== nothing) r.p10OverNothingUs = +(r.p10Us - nothing.p10Us).toFixed(1);
  }
  const runner = Object.values(modes)[0];
  const profile = await profileSelfTime(
    () => runner.node.invoke('forecast_weather', envelope),
    quick ? 1500 : 4000,
  );
  return { rows, profile };
}
