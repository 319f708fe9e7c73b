import type { INestApplication } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { messageDedupeId } from '../src/core/message-envelope.js';
import { telemetry } from '../src/telemetry/otel.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { OtlpFake, type ReceivedSpan } from './support/fakes/otlp-fake.js';
import {
  deleteStreams,
  requireNats,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * One trace per message, webhook to reply, exported over OTLP/HTTP to a local receiver, on the
 * in-process bus and across NATS (where `traceparent` travels in the message headers).
 */
const WEATHER_FLOW = readFileSync(path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');
const otlp = new OtlpFake();
let bundle: string;

beforeAll(async () => {
  await otlp.start();
  bundle = writeTempBundle({
    // Generous: first calls start component workers, slow on a loaded CI machine.
    limits: { component_deadline_ms: 20_000 },
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW },
        components: { weather_api: fixturePath('weather_api') },
      },
    ],
    tenants: { demo: { packs: ['demo'], channels: { web: { pack: 'demo', flow: 'weather_bot' } } } },
  });
});
afterAll(async () => {
  await otlp.close();
});

async function say(
  base: string,
  userId: string,
  text: string,
  messageId: string,
): Promise<{ replies: { text: string }[] }> {
  const res = await fetch(`${base}/webhooks/webhook/demo/dev/default/web?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, text, messageId }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { replies: { text: string }[] };
}

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(
    found.map((s) => s.name),
    `exactly one '${name}' span in ${spans.map((s) => s.name).join(', ')}`,
  ).toEqual([name]);
  return found[0]!;
}

/** Waits until the trace of `messageId` (found by its ingress publish span) holds every expected span. */
async function traceOf(userId: string, messageId: string, expectNames: string[]): Promise<ReceivedSpan[]> {
  // The bus's id of a message is its id inside its session.
  const busId = messageDedupeId(`demo:webhook:${userId}:${userId}`, messageId);
  let spans: ReceivedSpan[] = [];
  await vi.waitFor(
    async () => {
      await telemetry()?.forceFlush();
      const publish = otlp.spans.find(
        (s) => s.name === 'publish ingress' && s.attributes['messaging.message.id'] === busId,
      );
      spans = publish ? (otlp.traces().get(publish.traceId) ?? []) : [];
      for (const n of expectNames)
        expect(
          spans.map((s) => s.name),
          JSON.stringify(
            otlp.spans.map((s) => [
              s.name,
              s.traceId.slice(0, 6),
              s.spanId.slice(0, 6),
              s.parentSpanId.slice(0, 6),
            ]),
          ),
        ).toContain(n);
    },
    { timeout: 15_000, interval: 100 },
  );
  return spans;
}

function expectConnected(spans: ReceivedSpan[]): ReceivedSpan {
  const ids = new Set(spans.map((s) => s.spanId));
  const roots = spans.filter((s) => !s.parentSpanId);
  expect(roots.map((r) => r.name)).toEqual(['webhook webhook']);
  for (const s of spans)
    if (s.parentSpanId) expect(ids.has(s.parentSpanId), `parent of '${s.name}' is in the trace`).toBe(true);
  return roots[0]!;
}

function parentOf(spans: ReceivedSpan[], s: ReceivedSpan): string {
  return spans.find((p) => p.spanId === s.parentSpanId)?.name ?? '(none)';
}

const cases = [
  { bus: 'memory', config: async (): Promise<Record<string, string | number>> => ({}) },
  {
    bus: 'nats',
    config: async (): Promise<Record<string, string | number>> => {
      await requireNats();
      return { GREENTIC_BUS: 'nats', NATS_URL: SHARED_NATS_URL, ...uniqueNatsNamespace('telemetry') };
    },
  },
];

describe.each(cases)('traces over the $bus bus', ({ bus, config }) => {
  let app: INestApplication;
  let base: string;
  let cfg: Record<string, string | number>;

  beforeAll(async () => {
    cfg = await config();
    ({ app, url: base } = await startApp({
      config: {
        PORT: 0,
        LOG_LEVEL: 'silent',
        GREENTIC_BUNDLE: bundle,
        OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
        OTEL_TRACES_SAMPLER: 'always_on',
        ...cfg,
      },
    }));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    if (cfg?.['GREENTIC_NATS_STREAM_PREFIX'])
      await deleteStreams(SHARED_NATS_URL, String(cfg['GREENTIC_NATS_STREAM_PREFIX']));
  });

  it('a two-turn conversation gives one connected trace per message, with tenancy attributes and no message text', async () => {
    const user = `u-${bus}`;
    const first = `hello-${bus}-opening-words`;
    const answer = `Zanzibarville`;
    const t1 = await say(base, user, first, `${bus}-turn-1`);
    expect(t1.replies.map((r) => r.text)).toContain('What location would you like a forecast for?');
    const t2 = await say(base, user, answer, `${bus}-turn-2`);
    expect(t2.replies[0]?.text).toMatch(/^Weather for /);

    // One span per hop; the flow's nodes are events on its span. The channel has no callback_url,
    // so nothing consumes egress: the egress publish also answers the waiting replica.
    const common = [
      'webhook webhook',
      'publish ingress',
      'consume ingress',
      'flow weather_bot',
      'publish egress',
    ];
    const trace1 = await traceOf(user, `${bus}-turn-1`, common);
    const trace2 = await traceOf(user, `${bus}-turn-2`, [...common, 'component weather_api']);
    expect(trace1[0]!.traceId).not.toBe(trace2[0]!.traceId);
    // Nothing but the hops: no span per node, commit or message by default.
    expect(trace1.map((s) => s.name).sort()).toEqual([...common].sort());
    expect(trace2.map((s) => s.name).sort()).toEqual([...common, 'component weather_api'].sort());

    for (const spans of [trace1, trace2]) {
      expectConnected(spans);
      // The path of the message, parent by parent: webhook → publish → (bus) → consume → flow.
      expect(parentOf(spans, byName(spans, 'publish ingress'))).toBe('webhook webhook');
      expect(parentOf(spans, byName(spans, 'consume ingress'))).toBe('publish ingress');
      const flow = byName(spans, 'flow weather_bot');
      expect(parentOf(spans, flow)).toBe('consume ingress');
      expect(parentOf(spans, byName(spans, 'publish egress'))).toBe('consume ingress');
      expect(flow.attributes).toMatchObject({
        'greentic.tenant': 'demo',
        'greentic.env': 'dev',
        'greentic.team': 'default',
        'greentic.channel': 'web',
        'greentic.flow': 'weather_bot',
      });
      for (const e of flow.events) {
        expect(e.name).toBe(`node ${String(e.attributes['greentic.node'])}`);
        expect(typeof e.attributes['greentic.duration_ms']).toBe('number');
      }
      expect(byName(spans, 'consume ingress').attributes['messaging.system']).toBe(
        bus === 'nats' ? 'nats' : 'memory',
      );
      expect(spans.every((s) => s.serviceName === 'greentic-runner')).toBe(true);
      const everything = JSON.stringify(spans);
      expect(everything).not.toContain(first);
      expect(everything).not.toContain(answer);
    }
    expect(byName(trace1, 'flow weather_bot').events.map((e) => e.name)).toEqual(['node in']);
    expect(byName(trace2, 'flow weather_bot').events.map((e) => e.name)).toEqual([
      'node in',
      'node forecast_weather',
      'node weather_text',
    ]);
    const component = byName(trace2, 'component weather_api');
    expect(parentOf(trace2, component)).toBe('flow weather_bot');
    expect(component.attributes).toMatchObject({
      'greentic.tenant': 'demo',
      'greentic.flow': 'weather_bot',
      'greentic.node': 'forecast_weather',
      'greentic.component': 'weather_api',
    });
  }, 60_000);
});
