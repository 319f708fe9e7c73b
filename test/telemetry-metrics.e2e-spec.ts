import type { INestApplication } from '@nestjs/common';
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../src/core/component-runtime.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * `/metrics` in the Prometheus text format, read back with a Prometheus text parser: the message
 * counters move by exactly the messages sent, histograms and gauges are there, and no label
 * carries a user, session or message id.
 */
const WEATHER_FLOW = readFileSync(path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');
let app: INestApplication;
let base: string;

beforeAll(async () => {
  const bundle = writeTempBundle({
    // Generous: first calls start component workers, slow on a loaded CI machine.
    limits: { component_deadline_ms: 20_000 },
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW },
        components: { weather_api: fixturePath('weather_api') },
      },
    ],
    tenants: {
      demo: { packs: ['demo'], channels: { web: { pack: 'demo', flow: 'weather_bot' } } },
      acme: { packs: ['demo'], channels: { support: { pack: 'demo', flow: 'weather_bot' } } },
    },
  });
  ({ app, url: base } = await startApp({
    config: { PORT: 0, LOG_LEVEL: 'silent', GREENTIC_BUNDLE: bundle },
  }));
}, 120_000);
afterAll(async () => {
  await app?.close();
});

async function scrape(): Promise<{ text: string; families: Map<string, PromFamily> }> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await res.text();
  return { text, families: new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])) };
}

/** Sum of a counter's samples whose labels include `match`. */
function total(families: Map<string, PromFamily>, name: string, match: Record<string, string>): number {
  const f = families.get(name);
  if (!f) return 0;
  return f.metrics
    .filter((m) => Object.entries(match).every(([k, v]) => m.labels?.[k] === v))
    .reduce((n, m) => n + Number(m.value ?? m.count ?? 0), 0);
}

async function send(tenant: string, channel: string, userId: string, text: string): Promise<void> {
  const res = await fetch(`${base}/webhooks/webhook/${tenant}/dev/default/${channel}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, text }),
  });
  expect(res.status).toBe(200);
  await res.arrayBuffer();
}

describe('prometheus /metrics', () => {
  it('parses, and the message counters move by exactly the messages sent', async () => {
    const before = await scrape();
    const demo = { tenant: 'demo', channel: 'web' };
    const acme = { tenant: 'acme', channel: 'support' };
    const inBefore = total(before.families, 'greentic_messages_in_total', demo);
    const outBefore = total(before.families, 'greentic_messages_out_total', {
      ...demo,
      outcome: 'delivered',
    });
    const acmeBefore = total(before.families, 'greentic_messages_in_total', acme);

    // 5 first turns (parked on the question) and 2 second turns (completed) for demo; 3 for acme.
    for (const u of ['a', 'b', 'c', 'd', 'e']) await send('demo', 'web', `m-${u}`, 'hi');
    for (const u of ['a', 'b']) await send('demo', 'web', `m-${u}`, 'Oslo');
    for (const u of ['x', 'y', 'z']) await send('acme', 'support', `m-${u}`, 'hi');

    await vi.waitFor(async () => {
      const after = await scrape();
      expect(total(after.families, 'greentic_messages_in_total', demo) - inBefore).toBe(7);
      // The channel has no callback_url: its replies go to the waiting callers, no egress consumer
      // runs for it, and nothing is counted out.
      expect(
        total(after.families, 'greentic_messages_out_total', { ...demo, outcome: 'delivered' }) - outBefore,
      ).toBe(0);
      expect(total(after.families, 'greentic_messages_in_total', acme) - acmeBefore).toBe(3);
    });
    const after = await scrape();
    expect(
      total(after.families, 'greentic_messages_in_total', { ...demo, outcome: 'parked' }),
    ).toBeGreaterThanOrEqual(5);
    expect(
      total(after.families, 'greentic_messages_in_total', { ...demo, outcome: 'completed' }),
    ).toBeGreaterThanOrEqual(2);
  });

  it('exposes latency histograms and runtime gauges under bounded labels', async () => {
    await send('demo', 'web', 'hist-user', 'hi');
    await send('demo', 'web', 'hist-user', 'Lima');
    const { families, text } = await scrape();
    // This parser folds labelled histogram series into one; read their samples from the lines.
    const samples = (name: string): { labels: Record<string, string>; value: number }[] =>
      text
        .split('\n')
        .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
        .map((l) => {
          const m = /^[^{ ]+(?:\{(.*)\})? (\S+)$/.exec(l)!;
          const labels = Object.fromEntries(
            [...(m[1] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]),
          );
          return { labels, value: Number(m[2]) };
        });
    for (const name of [
      'greentic_node_duration_ms',
      'greentic_component_duration_ms',
      'greentic_session_store_duration_ms',
      'greentic_bus_lag_ms',
    ]) {
      expect(families.get(name)?.type, `${name} is a histogram`).toBe('HISTOGRAM');
      expect(
        samples(`${name}_count`).some((s) => s.value > 0),
        `${name}_count > 0`,
      ).toBe(true);
      expect(samples(`${name}_bucket`).some((s) => s.labels['le'] === '+Inf')).toBe(true);
    }
    expect(samples('greentic_node_duration_ms_count').map((s) => s.labels['node'])).toEqual(
      expect.arrayContaining(['in', 'forecast_weather', 'weather_text']),
    );
    expect(
      samples('greentic_component_duration_ms_count').some(
        (s) => s.labels['component'] === 'weather_api' && s.labels['outcome'] === 'ok',
      ),
    ).toBe(true);
    expect([...families.keys()]).toEqual(
      expect.arrayContaining([
        'greentic_component_instances',
        'greentic_component_queue_depth',
        'greentic_inflight_messages',
      ]),
    );
    // Worker threads exist only with the pooled runtime; the in-process one reports no pool size.
    const runtimeStats = app.get<ComponentRuntime>(COMPONENT_RUNTIME).stats?.() ?? {};
    expect(families.has('greentic_component_pool_size')).toBe(typeof runtimeStats['poolSize'] === 'number');
    const instances = families.get('greentic_component_instances')!;
    expect(instances.metrics.some((m) => m.labels?.['tenant'] === 'demo' && Number(m.value) >= 1)).toBe(true);

    // Cardinality: every label is one of a fixed set, and no value is a user or session id.
    const allowed = new Set([
      'tenant',
      'channel',
      'outcome',
      'flow',
      'node',
      'operation',
      'component',
      'store',
      'direction',
      'pack',
      'backend',
      'result',
      'le',
    ]);
    for (const f of families.values()) {
      if (!f.name.startsWith('greentic_')) continue;
      for (const m of f.metrics)
        for (const k of Object.keys(m.labels ?? {})) expect(allowed, `${f.name} label '${k}'`).toContain(k);
    }
    for (const line of text.split('\n').filter((l) => l.startsWith('greentic_'))) {
      for (const k of line.matchAll(/(\w+)="/g))
        expect(allowed, `label '${k[1]}' in ${line}`).toContain(k[1]);
    }
    expect(text).not.toContain('hist-user');
    expect(text).not.toContain('m-a');
  });

  it('counts pack reloads by outcome', async () => {
    const before = total((await scrape()).families, 'greentic_pack_reloads_total', {
      tenant: 'demo',
      pack: 'demo',
      outcome: 'unchanged',
    });
    const res = await fetch(`${base}/admin/packs/reload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(200);
    const after = total((await scrape()).families, 'greentic_pack_reloads_total', {
      tenant: 'demo',
      pack: 'demo',
      outcome: 'unchanged',
    });
    expect(after - before).toBe(1);
  });

  it('does not grow the series count with the number of users', async () => {
    const count = (t: string) => t.split('\n').filter((l) => l.startsWith('greentic_')).length;
    await send('demo', 'web', 'series-0', 'hi');
    const before = count((await scrape()).text);
    for (let i = 1; i <= 20; i++) await send('demo', 'web', `series-${i}`, 'hi');
    expect(count((await scrape()).text)).toBe(before);
  });
});
