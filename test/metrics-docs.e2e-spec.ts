import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { FakeServer } from './support/fakes/fake-server.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * The metric names the documentation gives are the names `/metrics` serves (issue #22 item 7):
 * every `greentic_*` name in README.md and docs/ is read, a runner is driven through messages, a
 * component call, a rate-limit refusal, a timer tick, a pack reload, a component deadline, a busy
 * pool and a memory cap, and each documented name must be a family of the scrape.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
const WEATHER_FLOW = readFileSync(path.join(ROOT, 'examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');
const BEAT = 'id: beat\ntype: timer\nnodes:\n  say:\n    reply: { text: tick }\n';
/** A flow calling one component, which misbehaves: `loop` runs past its deadline, `grow` past its memory cap. */
const call = (component: string) =>
  `id: ${component}\ntype: messaging\nnodes:\n  c:\n    component.exec: { component: ${component}, operation: execute }\n    routing:\n      - to: after\n  after:\n    reply: { text: done }\n`;

/** `greentic_*` words in the docs that are not metrics. */
const NOT_METRICS = new Set(['greentic_reply']); // Slack message metadata event type (production-messaging.md)

function documentedMetricNames(): Map<string, string[]> {
  const files = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
    f.endsWith('.md'),
  );
  const names = new Map<string, string[]>();
  for (const f of files) {
    for (const m of readFileSync(path.join(ROOT, f), 'utf8').matchAll(/\b(greentic_[a-z0-9_]*[a-z0-9])\b/g)) {
      if (NOT_METRICS.has(m[1]!)) continue;
      names.set(m[1]!, [...(names.get(m[1]!) ?? []), f]);
    }
  }
  return names;
}

let app: RunnerApp;
let base: string;
let callback: FakeServer;

beforeAll(async () => {
  callback = await new FakeServer(() => ({ status: 204 })).listen();
  const bundle = writeTempBundle({
    limits: { component_deadline_ms: 20_000 },
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW, 'beat.ygtc': BEAT },
        components: { weather_api: fixturePath('weather_api') },
      },
      {
        id: 'hazards',
        flows: { 'loop.ygtc': call('loop'), 'grow.ygtc': call('grow') },
        components: { loop: fixturePath('loop'), grow: fixturePath('grow') },
      },
    ],
    tenants: {
      slowco: {
        packs: ['hazards'],
        limits: { component_deadline_ms: 300 },
        channels: { loop: { pack: 'hazards', flow: 'loop' } },
      },
      // Its own tenant and the bundle's long deadline: on a loaded machine, growing to the cap
      // (and the worker replaced after slowco's deadline kill) could pass a 300 ms deadline first,
      // and the call would count as a timeout, not a memory kill.
      bigco: {
        packs: ['hazards'],
        limits: { component_memory_mb: 32 },
        channels: { grow: { pack: 'hazards', flow: 'grow' } },
      },
      demo: {
        packs: ['demo'],
        channels: { web: { pack: 'demo', flow: 'weather_bot', rate_limit: { rate: 2, per: '1m' } } },
        timers: {
          dev: {
            beat: {
              pack: 'demo',
              flow: 'beat',
              interval: '1s',
              settings: { callback_url: `http://127.0.0.1:${callback.port}/tick` },
            },
          },
        },
      },
    },
  });
  ({ app, url: base } = await startApp({
    config: {
      PORT: 0,
      LOG_LEVEL: 'silent',
      GREENTIC_BUNDLE: bundle,
      GREENTIC_COORDINATION: 'memory',
      // One call at a time per tenant and no queue, so a second concurrent call is refused as busy.
      GREENTIC_COMPONENT_POOL_MAX: 1,
      GREENTIC_COMPONENT_PIPELINE: 1,
      GREENTIC_COMPONENT_QUEUE_SIZE: 0,
    },
  }));
}, 120_000);

afterAll(async () => {
  await app?.close();
  await callback?.close();
});

async function post(text: string, channel = 'demo/dev/default/web', userId = 'ada'): Promise<number> {
  const res = await fetch(`${base}/webhooks/webhook/${channel}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, text }),
  });
  await res.arrayBuffer();
  return res.status;
}

describe('metric names in the docs', () => {
  it('are the names /metrics serves', async () => {
    // Two messages (the second calls the weather component), then a third over the channel's limit.
    expect(await post('hi')).toBe(200);
    expect(await post('London')).toBe(200);
    expect(await post('again')).toBe(429);
    await vi.waitFor(() => expect(callback.requests.length).toBeGreaterThan(0), { timeout: 10_000 });
    expect((await fetch(`${base}/admin/packs/reload`, { method: 'POST' })).status).toBe(200);
    // A deadline (and, while it runs, a second call refused as busy), then a memory cap.
    const looping = post('spin', 'slowco/dev/default/loop');
    await new Promise((r) => setTimeout(r, 100));
    // Another user: one session's messages run one after the other, never side by side.
    await post('spin too', 'slowco/dev/default/loop', 'bob');
    await looping;
    await post('grow', 'bigco/dev/default/grow');

    const text = await (await fetch(`${base}/metrics`)).text();
    const served = new Set(parsePrometheusTextFormat(text).map((f) => f.name));
    const documented = documentedMetricNames();
    expect(documented.size).toBeGreaterThan(20);
    const missing = [...documented]
      .filter(([name]) => !served.has(name))
      .map(([name, files]) => `${name} (${[...new Set(files)].join(', ')})`);
    expect(missing, `documented but not served; served: ${[...served].sort().join(' ')}`).toEqual([]);
    // And the other way: every family the runner serves has its row in the operations guide.
    const table = readFileSync(path.join(ROOT, 'docs/operations.md'), 'utf8');
    const undocumented = [...served].filter(
      (n) => n.startsWith('greentic_') && !table.includes(`| \`${n}\``),
    );
    expect(undocumented, 'served but not in the metrics table of docs/operations.md').toEqual([]);
  });

  it('name the timer and rate-limit counters as served', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    const served = new Set(parsePrometheusTextFormat(text).map((f) => f.name));
    expect(served).toContain('greentic_timer_ticks_total');
    expect(served).toContain('greentic_ratelimit_decisions_total');
    expect(documentedMetricNames().has('greentic_timer_ticks_total')).toBe(true);
    expect(documentedMetricNames().has('greentic_ratelimit_decisions_total')).toBe(true);
  });
});
