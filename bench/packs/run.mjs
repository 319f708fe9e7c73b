// bench/packs: build, verify and load time of signed packs with 1, 10 and 50 components and 100
// flows (plus the demo's 12 MB JavaScript component when it has been built), and verify
// throughput against plain BLAKE3 of the same bytes measured in the same run: the ratio is what
// our checks (ZIP structure, SBOM, signature, CBOR manifest) cost on top of hashing.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { blake3 } from '@noble/hashes/blake3.js';
import { root, table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
const RUNS = quick ? 3 : 9;
const dist = (p) => path.join(root, 'dist', p);
const { buildPackFromDir } = await import(dist('packs/format/pack-builder.js'));
const { generateKeyPair, keyFingerprint } = await import(dist('packs/format/keys.js'));
const { openPack } = await import(dist('packs/verify/pack-verifier.js'));
const { trustPolicy } = await import(dist('packs/verify/trust.js'));
const { contentsOf } = await import(dist('packs/sources/gtpack.source.js'));
const { PackRegistry } = await import(dist('packs/pack-registry.service.js'));
const { JcoComponentRuntime } = await import(dist('wasm/jco-component.runtime.js'));
const { TranspileCache } = await import(dist('wasm/transpile-cache.js'));
const { parse } = await import('@bytecodealliance/jco');
const { Logger } = await import('@nestjs/common');
// The registry and runtime log each load; a benchmark loop does not want 50 lines per run.
Logger.overrideLogger(['error']);

const key = generateKeyPair();
const policy = trustPolicy('strict', [
  { fingerprint: keyFingerprint(key.publicKey), publicKey: key.publicKey, source: 'bench' },
]);
const ECHO_WAT = readFileSync(path.join(root, 'test/fixtures/components/echo.wat'), 'utf8');
const work = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-packs-'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
async function time(fn) {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}
/** Median of `runs` timed runs, after two untimed ones (JIT warm-up). */
async function timeRuns(fn, runs = RUNS) {
  for (let i = 0; i < 2; i++) await fn();
  const out = [];
  for (let i = 0; i < runs; i++) out.push(await time(fn));
  return median(out);
}

function flowText(i, component, operation) {
  return `id: f${i}\ntype: messaging\nnodes:\n  call:\n    component.exec:\n      component: ${component}\n      operation: ${operation}\n    routing:\n      - to: answer\n  answer:\n    reply: { text: "flow ${i}: {{call.payload}}" }\n`;
}

/** A pack directory: `components` distinct WAT components (or given bytes), `flows` flows using them. */
async function packDir(name, components, flows, wasm, operation = 'execute') {
  const dir = path.join(work, name);
  mkdirSync(path.join(dir, 'flows'), { recursive: true });
  const comps = [];
  for (let c = 0; c < components; c++) {
    const bytes =
      wasm ?? (await parse(ECHO_WAT.replace('(i32.const 1024))', `(i32.const ${1024 + c * 16}))`)));
    mkdirSync(path.join(dir, 'components', `c${c}`), { recursive: true });
    writeFileSync(path.join(dir, 'components', `c${c}`, 'component.wasm'), bytes);
    comps.push(`  - { name: c${c}, version: 0.1.0, path: components/c${c}/component.wasm }`);
  }
  const fl = [];
  for (let i = 0; i < flows; i++) {
    writeFileSync(path.join(dir, 'flows', `f${i}.ygtc`), flowText(i, `c${i % components}`, operation));
    fl.push(`  - flows/f${i}.ygtc`);
  }
  writeFileSync(
    path.join(dir, 'pack.yaml'),
    `id: bench\nversion: 1.0.0\nflows:\n${fl.join('\n')}\ncomponents:\n${comps.join('\n')}\n`,
  );
  return dir;
}

/** The registry's load (verify → prepare every component → parse and validate every flow). */
function registryFor(bytes, cacheDir) {
  const tenant = { id: 't', envs: new Map(), packs: [{ id: 'bench', source: 'file:bench.gtpack' }] };
  const bundles = { bundle: { dir: work, file: path.join(work, 'bundle.yaml') }, tenants: () => [tenant] };
  const source = {
    schemes: ['file'],
    load: async () =>
      contentsOf(
        await openPack(bytes, { label: 'bench.gtpack', policy, expectedId: 'bench' }),
        `sha256:${Date.now()}`,
        'bench.gtpack',
      ),
  };
  const runtime = new JcoComponentRuntime({ transpileCache: new TranspileCache(cacheDir) });
  const registry = new PackRegistry(bundles, [source], runtime, undefined, {
    GREENTIC_PACK_KEEP_VERSIONS: 2,
    GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
  });
  return { registry, runtime, binding: tenant.packs[0] };
}

async function loadOnce(bytes, cacheDir) {
  const { registry, runtime, binding } = registryFor(bytes, cacheDir);
  const ms = await time(() => registry.load('t', binding));
  await runtime.close();
  return ms;
}

const cases = [
  { name: '1 component, 100 flows', components: 1, flows: 100 },
  { name: '10 components, 100 flows', components: 10, flows: 100 },
  { name: '50 components, 100 flows', components: 50, flows: 100 },
];
const demoWasm = path.join(root, 'examples/demo/packs/demo/components/weather_api/component.wasm');
if (existsSync(demoWasm))
  cases.push({
    name: 'demo JS component (12 MB), 100 flows',
    components: 1,
    flows: 100,
    wasm: readFileSync(demoWasm),
    operation: 'forecast_weather',
  });
else
  process.stderr.write(
    `note: ${demoWasm} not built (node scripts/build-demo.mjs); skipping the large-component row\n`,
  );

const rows = [];
for (const c of cases) {
  const dir = await packDir(c.name.replace(/\W+/g, '-'), c.components, c.flows, c.wasm, c.operation);
  let built;
  const buildMs = await timeRuns(
    async () => (built = await buildPackFromDir(dir, { key, signedAt: '2026-01-01T00:00:00Z' })),
  );
  const bytes = built.bytes;
  // Verify and the BLAKE3 baseline alternate, so both see the same machine load; the ratio is
  // the median of the per-pair ratios.
  const verify = () => openPack(bytes, { label: 'bench.gtpack', policy });
  const hash = async () => blake3(bytes);
  for (let i = 0; i < 3; i++) (await verify(), await hash());
  const pairs = [];
  for (let i = 0; i < RUNS * 2; i++) pairs.push({ v: await time(verify), b: await time(hash) });
  const verifyMs = median(pairs.map((p) => p.v));
  const blake3Ms = median(pairs.map((p) => p.b));
  const ratio = median(pairs.map((p) => p.v / p.b));
  const coldCache = path.join(work, `transpile-${rows.length}`);
  const loadColdMs = await loadOnce(bytes, coldCache);
  const warm = [];
  for (let i = 0; i < RUNS; i++) warm.push(await loadOnce(bytes, coldCache));
  const mb = bytes.byteLength / 1024 / 1024;
  rows.push({
    pack: c.name,
    size:
      bytes.byteLength < 1024 * 1024 ? `${(bytes.byteLength / 1024).toFixed(1)} KiB` : `${mb.toFixed(2)} MiB`,
    'build ms': buildMs.toFixed(1),
    'verify ms': verifyMs.toFixed(2),
    'load ms (cold transpile)': loadColdMs.toFixed(0),
    'load ms (warm cache)': median(warm).toFixed(1),
    'verify MB/s': (mb / (verifyMs / 1000)).toFixed(1),
    'blake3 MB/s': (mb / (blake3Ms / 1000)).toFixed(1),
    'verify/blake3': ratio.toFixed(2),
    raw: {
      bytes: bytes.byteLength,
      components: c.components,
      flows: c.flows,
      buildMs,
      verifyMs,
      blake3Ms,
      loadColdMs,
      loadWarmMs: median(warm),
    },
  });
}

const columns = [
  'pack',
  'size',
  'build ms',
  'verify ms',
  'load ms (cold transpile)',
  'load ms (warm cache)',
  'verify MB/s',
  'blake3 MB/s',
  'verify/blake3',
];
process.stdout.write(table(rows, columns) + '\n');
const file = writeResults('packs', {
  runs: RUNS,
  notes: [
    'build: pack directory -> signed .gtpack (flows validated, SBOM, ed25519), median of runs',
    'verify: ZIP central directory + limits, SBOM (BLAKE3 of every file), signature, CBOR manifest; median',
    'blake3: @noble/hashes BLAKE3 of the same archive bytes in the same process (baseline)',
    'load: verify + prepare every component (jco transpile; cold = empty transpile cache) + parse and validate every flow',
  ],
  results: rows.map((r) => ({ pack: r.pack, ...r.raw })),
});
process.stdout.write(`\nwrote ${path.relative(root, file)}\n`);
