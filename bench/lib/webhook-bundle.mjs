// The webhook benchmark's bundle, shared by the benchmarks that load the runner's sync webhook
// (bench/telemetry; bench/webhook builds the same one): one pack `bench`, one flow calling one
// component, tenant `bench`, channel `web` at /webhooks/webhook/bench/dev/default/web.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root } from './harness.mjs';

export const WEBHOOK_ROUTE = '/webhooks/webhook/bench/dev/default/web?wait=true';

const cities = ['Paris', 'Oslo', 'Lima', 'Cairo', 'Tokyo', 'Quito', 'Perth', 'Dakar'];
/** 1000 distinct users so per-session ordering does not serialise the load. */
export const webhookBody = (i) =>
  JSON.stringify({
    userId: `u${i % 1000}`,
    text: cities[i % cities.length],
    messageId: `m${process.pid}-${Date.now()}-${i}`,
  });

async function componentFor(kind) {
  if (kind === 'weather') {
    const wasm = path.join(root, 'examples/demo/packs/demo/components/weather_api/component.wasm');
    if (!existsSync(wasm))
      execFileSync(process.execPath, [path.join(root, 'scripts/build-demo.mjs')], { stdio: 'inherit' });
    return {
      wasm,
      name: 'weather_api',
      call: 'mcp.exec:\n      component: weather_api\n      action: forecast_weather\n      args:\n        q: message.text\n        days: 1',
      reply: '{{forecast.payload.location.name}}: {{forecast.payload.summary}}',
    };
  }
  const { assembleWatFile } = await import(path.join(root, 'dist/wasm/component-builder.js'));
  const wasm = await assembleWatFile(path.join(root, 'test/fixtures/components/echo.wat'));
  return {
    wasm,
    name: 'echo',
    call: 'component.exec:\n      component: echo\n      operation: execute',
    reply: '{{forecast.payload}}: sunny',
  };
}

/**
 * Writes the bundle to a temp folder and answers its path. `echo` is the WAT echo component (a
 * call costs microseconds, so the runner's own overhead shows); `weather` the demo's JS component.
 */
export async function benchBundle(kind = 'echo') {
  const c = await componentFor(kind);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-bench-'));
  const pack = path.join(dir, 'packs/bench');
  mkdirSync(path.join(pack, 'flows'), { recursive: true });
  mkdirSync(path.join(pack, `components/${c.name}`), { recursive: true });
  copyFileSync(c.wasm, path.join(pack, `components/${c.name}/component.wasm`));
  writeFileSync(
    path.join(pack, 'flows/bench.ygtc'),
    `id: bench\ntype: messaging\nnodes:\n  forecast:\n    ${c.call}\n    routing:\n      - to: answer\n  answer:\n    reply:\n      text: "Weather for ${c.reply}"\n`,
  );
  writeFileSync(
    path.join(pack, 'pack.yaml'),
    `id: bench\nversion: 1.0.0\nflows: [flows/bench.ygtc]\ncomponents:\n  - { name: ${c.name}, version: 0.1.0, path: components/${c.name}/component.wasm }\n`,
  );
  const bundle = path.join(dir, 'bundle.yaml');
  writeFileSync(
    bundle,
    `trust: { policy: dev }\nlimits: { component_deadline_ms: 5000 }\ntenants:\n  bench:\n    packs: [{ id: bench, source: file:./packs/bench }]\n    envs:\n      dev:\n        teams:\n          default:\n            channels:\n              web: { provider: webhook, pack: bench, flow: bench }\n`,
  );
  return bundle;
}
