// bench/webhook: the sync webhook path (tenancy → flow → one component call → reply) against a
// bare node:http server answering the same JSON, measured in the same run, at 50 connections.
// Also compares TenantCtx scopes: durable per tenant (default), plain request scope, singleton, and
// shows the floor: the same answer from the bare layers the runner is built on (Nest on Fastify, a
// Nest RPC dispatch, a worker-thread hop) with no runner logic, so the runner's own cost shows.
import path from 'node:path';
import { load, root, spawnServer, table, writeResults } from '../lib/harness.mjs';
import { benchBundle, webhookBody, WEBHOOK_ROUTE } from '../lib/webhook-bundle.mjs';

const quick = process.argv.includes('--quick');
const duration = quick ? 3 : 10;
const connections = 50;

const echoBundle = await benchBundle('echo');
const weatherBundle = await benchBundle('weather');
const body = webhookBody;
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

const route = WEBHOOK_ROUTE;
await measure('bare node:http', path.join(root, 'bench/webhook/bare-server.mjs'), [], {}, '/');
// What the layers the runner is built from cost without any runner logic (floor-server.mjs):
// the most a runner on them could reach, so the gap to it is the runner's own cost.
const floor = path.join(root, 'bench/webhook/floor-server.mjs');
await measure('floor: Nest HTTP route + guard (durable)', floor, [], { GREENTIC_FLOOR: 'http' }, route);
await measure('floor: + Nest RPC dispatch + guard', floor, [], { GREENTIC_FLOOR: 'rpc' }, route);
await measure('floor: + worker-thread hop', floor, [], { GREENTIC_FLOOR: 'worker' }, route);
const runner = path.join(root, 'bench/webhook/runner-server.mjs');
await measure(
  'runner echo (TenantCtx durable)',
  runner,
  [echoBundle],
  { GREENTIC_TENANCY_SCOPE: 'durable' },
  route,
);
await measure(
  'runner echo (TenantCtx request)',
  runner,
  [echoBundle],
  { GREENTIC_TENANCY_SCOPE: 'request' },
  route,
);
await measure(
  'runner echo (singleton)',
  runner,
  [echoBundle],
  { GREENTIC_TENANCY_SCOPE: 'singleton' },
  route,
);
await measure(
  'runner demo weather JS (durable)',
  runner,
  [weatherBundle],
  { GREENTIC_TENANCY_SCOPE: 'durable' },
  route,
);

const bare = rows[0].reqPerSec;
for (const r of rows) r.ratio = (r.reqPerSec / bare).toFixed(3);
process.stdout.write(`\nsync webhook, ${connections} connections, ${duration}s each (+2s warm-up)\n`);
process.stdout.write(
  table(rows, ['target', 'reqPerSec', 'p50Ms', 'p99Ms', 'ratio', 'errors', 'non2xx', 'total']) + '\n',
);
const durable = rows.find((r) => r.target === 'runner echo (TenantCtx durable)');
const target = { ratioAtLeast: 0.25, p99AtMostMs: 20 };
const met = Number(durable.ratio) >= target.ratioAtLeast && durable.p99Ms <= target.p99AtMostMs;
process.stdout.write(
  `target (durable runner ≥ ${target.ratioAtLeast}× bare, p99 ≤ ${target.p99AtMostMs} ms): ${met ? 'met' : 'NOT met'}\n`,
);
const file = writeResults('webhook', { connections, durationS: duration, rows, target, met });
process.stdout.write(`wrote ${path.relative(root, file)}\n`);
