// bench/webhook: the sync webhook path (tenancy → flow → one component call → reply) against a
// bare node:http server answering the same JSON, measured in the same run, at 50 connections.
// Also compares TenantCtx scopes: durable per tenant (default), plain request scope, singleton.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { load, root, spawnServer, table, writeResults } from '../lib/harness.mjs';

const quick = process.argv.includes('--quick');
const duration = quick ? 3 : 10;
const connections = 50;

const weatherWasm = path.join(root, 'examples/demo/packs/demo/components/weather_api/component.wasm');
if (!existsSync(weatherWasm)) execFileSync(process.execPath, [path.join(root, 'scripts/build-demo.mjs')], { stdio: 'inherit' });
const { assembleWatFile } = await import(path.join(root, 'dist/wasm/component-builder.js'));
const echoWasm = await assembleWatFile(path.join(root, 'test/fixtures/components/echo.wat'));

// Two one-component flows: the WAT echo (a component call costs microseconds, so the runner's own
// overhead shows) and the demo's JavaScript weather component (componentize-js, ~1 ms a call).
const FLOWS = {
  echo: {
    wasm: echoWasm,
    component: 'echo',
    flow: `id: bench
type: messaging
nodes:
  forecast:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply:
      text: "Weather for {{forecast.payload}}: sunny"
`,
  },
  weather: {
    wasm: weatherWasm,
    component: 'weather_api',
    flow: `id: bench
type: messaging
nodes:
  forecast:
    mcp.exec:
      component: weather_api
      action: forecast_weather
      args:
        q: message.text
        days: 1
    routing:
      - to: answer
  answer:
    reply:
      text: "Weather for {{forecast.payload.location.name}}: {{forecast.payload.summary}}"
`,
  },
};

function benchBundle(kind) {
  const { wasm, component, flow } = FLOWS[kind];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-'));
  const pack = path.join(dir, 'packs/bench');
  mkdirSync(path.join(pack, 'flows'), { recursive: true });
  mkdirSync(path.join(pack, `components/${component}`), { recursive: true });
  copyFileSync(wasm, path.join(pack, `components/${component}/component.wasm`));
  writeFileSync(path.join(pack, 'flows/bench.ygtc'), flow);
  writeFileSync(
    path.join(pack, 'pack.yaml'),
    `id: bench
version: 1.0.0
flows: [flows/bench.ygtc]
components:
  - { name: ${component}, version: 0.1.0, path: components/${component}/component.wasm }
`,
  );
  const bundle = path.join(dir, 'bundle.yaml');
  writeFileSync(
    bundle,
    `trust: { policy: dev }
limits: { component_deadline_ms: 5000 }
tenants:
  bench:
    packs: [{ id: bench, source: file:./packs/bench }]
    envs:
      dev:
        teams:
          default:
            channels:
              web: { provider: webhook, pack: bench, flow: bench }
`,
  );
  return bundle;
}

const cities = ['Paris', 'Oslo', 'Lima', 'Cairo', 'Tokyo', 'Quito', 'Perth', 'Dakar'];
// 1000 distinct users so per-session ordering does not serialise the load.
const body = (i) =>
  JSON.stringify({
    userId: `u${i % 1000}`,
    text: cities[i % cities.length],
    messageId: `m${process.pid}-${Date.now()}-${i}`,
  });

const echoBundle = benchBundle('echo');
const weatherBundle = benchBundle('weather');
const rows = [];
async function measure(label, script, args, env, pathSuffix) {
  const srv = await spawnServer(script, args, env);
  try {
    const r = await load({ url: srv.url + pathSuffix, connections, duration, body });
    rows.push({ target: label, ...r });
  } finally {
    await srv.stop();
  }
}

const route = '/webhooks/webhook/bench/dev/default/web?wait=true';
await measure('bare node:http', path.join(root, 'bench/webhook/bare-server.mjs'), [], {}, '/');
const runner = path.join(root, 'bench/webhook/runner-server.mjs');
await measure('runner echo (TenantCtx durable)', runner, [echoBundle], { GREENTIC_TENANCY_SCOPE: 'durable' }, route);
await measure('runner echo (TenantCtx request)', runner, [echoBundle], { GREENTIC_TENANCY_SCOPE: 'request' }, route);
await measure('runner echo (singleton)', runner, [echoBundle], { GREENTIC_TENANCY_SCOPE: 'singleton' }, route);
await measure('runner demo weather JS (durable)', runner, [weatherBundle], { GREENTIC_TENANCY_SCOPE: 'durable' }, route);

const bare = rows[0].reqPerSec;
for (const r of rows) r.ratio = (r.reqPerSec / bare).toFixed(3);
process.stdout.write(`\nsync webhook, ${connections} connections, ${duration}s each (+2s warm-up)\n`);
process.stdout.write(
  table(rows, ['target', 'reqPerSec', 'p50Ms', 'p99Ms', 'ratio', 'errors', 'non2xx', 'total']) + '\n',
);
const durable = rows[1];
const target = { ratioAtLeast: 0.25, p99AtMostMs: 20 };
const met = Number(durable.ratio) >= target.ratioAtLeast && durable.p99Ms <= target.p99AtMostMs;
process.stdout.write(
  `target (durable runner ≥ ${target.ratioAtLeast}× bare, p99 ≤ ${target.p99AtMostMs} ms): ${met ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('webhook', { connections, durationS: duration, rows, target, met });
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
