import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { MESSAGE_BUS, type MessageBus } from '../src/core/message-bus.js';
import type { EgressMessage } from '../src/core/message-envelope.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { writeTempBundle } from './support/temp-bundle.js';

const WEATHER_FLOW = readFileSync(path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');
const TRAP_FLOW = `id: trapper
type: messaging
meta:
  error_reply: "Sorry, that broke. Try again."
nodes:
  boom:
    component.exec:
      component: trap
      operation: execute
    routing:
      - to: after
  after:
    reply: { text: "unreachable" }
`;
const ECHO_FLOW = `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "acme echo: {{call.payload}}" }
`;

let app: INestApplication;
let base: string;

async function post(p: string, body: unknown, query = '?wait=true', headers: Record<string, string> = {}) {
  const res = await fetch(base + p + query, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json as Record<string, unknown> & { replies?: { text: string }[] } };
}

const DEMO = '/webhooks/webhook/demo/dev/default/web';

beforeAll(async () => {
  const bundle = writeTempBundle({
    limits: { max_body_bytes: 4096 },
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': WEATHER_FLOW },
        components: { weather_api: fixturePath('weather_api') },
      },
      { id: 'hazards', flows: { 'trapper.ygtc': TRAP_FLOW }, components: { trap: fixturePath('trap') } },
      { id: 'acme', flows: { 'echo.ygtc': ECHO_FLOW }, components: { echo: fixturePath('echo') } },
    ],
    tenants: {
      demo: {
        packs: ['demo', 'hazards'],
        channels: { web: { pack: 'demo', flow: 'weather_bot' }, trap: { pack: 'hazards', flow: 'trapper' } },
      },
      acme: { packs: ['acme'], channels: { support: { pack: 'acme', flow: 'echo' } } },
    },
  });
  const started = await startApp({ config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } });
  app = started.app;
  base = started.url;
});

afterAll(async () => {
  await app?.close();
});

describe('foundation: one message end to end', () => {
  it('holds the two-turn demo conversation', async () => {
    const t1 = await post(DEMO, { userId: 'alice', text: 'hi' });
    expect(t1.status).toBe(200);
    expect(t1.body.sessionKey).toBe('demo:webhook:alice:alice');
    expect(t1.body.replies?.map((r) => r.text)).toEqual([
      "Hi there! Let's get your weather forecast.",
      'What location would you like a forecast for?',
    ]);
    const t2 = await post(DEMO, { userId: 'alice', text: 'Paris' });
    expect(t2.status).toBe(200);
    expect(t2.body.replies).toHaveLength(1);
    expect(t2.body.replies?.[0]?.text).toMatch(/^Weather for Paris: .+/);
    // The flow ended, so the next message starts it again.
    const t3 = await post(DEMO, { userId: 'alice', text: 'again' });
    expect(t3.body.replies?.[0]?.text).toBe("Hi there! Let's get your weather forecast.");
  });

  it('keeps two interleaved users in separate sessions', async () => {
    await post(DEMO, { userId: 'bob', text: 'hello' });
    await post(DEMO, { userId: 'carol', text: 'hello' });
    const bob = await post(DEMO, { userId: 'bob', text: 'Oslo' });
    const carol = await post(DEMO, { userId: 'carol', text: 'Lima' });
    expect(bob.body.replies?.[0]?.text).toMatch(/^Weather for Oslo: /);
    expect(carol.body.replies?.[0]?.text).toMatch(/^Weather for Lima: /);
    expect(bob.body.sessionKey).not.toBe(carol.body.sessionKey);
  });

  it('re-asks when an answer breaks the question rules', async () => {
    await post(DEMO, { userId: 'dave', text: 'hi' });
    const bad = await post(DEMO, { userId: 'dave', text: 'a place with far too many words' });
    expect(bad.status).toBe(200);
    expect(bad.body.status).toBe('parked');
    expect(bad.body.replies?.map((r) => r.text).join(' ')).toContain(
      'What location would you like a forecast for?',
    );
    const good = await post(DEMO, { userId: 'dave', text: 'New York' });
    expect(good.body.replies?.[0]?.text).toMatch(/^Weather for New York: /);
  });

  it('accepts without waiting and delivers the replies on the egress subject', async () => {
    const bus = app.get<MessageBus>(MESSAGE_BUS);
    const got = new Promise<EgressMessage>((resolve) => {
      void bus.subscribe<EgressMessage>('greentic.messaging.egress.dev.demo.default.web', async (m) => {
        if (m.data.inReplyTo === 'async-1') resolve(m.data);
      });
    });
    const r = await post(DEMO, { userId: 'erin', text: 'hi', messageId: 'async-1' }, '');
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ accepted: true, messageId: 'async-1' });
    const egress = await got;
    expect(egress.replies.map((x) => x.text)).toContain('What location would you like a forecast for?');
    expect(egress).toMatchObject({
      tenant: 'demo',
      env: 'dev',
      team: 'default',
      channel: 'web',
      sessionKey: 'demo:webhook:erin:erin',
    });
  });

  it('answers a redelivered message id once and does not run it again', async () => {
    const first = await post(DEMO, { userId: 'frank', text: 'hi', messageId: 'dup-1' });
    expect(first.body.replies).toHaveLength(2);
    const again = await post(DEMO, { userId: 'frank', text: 'Rome', messageId: 'dup-2' });
    expect(again.body.replies?.[0]?.text).toMatch(/^Weather for Rome/);
    // A replay of dup-2 must not advance the conversation: the session was not touched.
    const replay = await post(DEMO, { userId: 'frank', text: 'Rome', messageId: 'dup-2' }, '');
    expect(replay.status).toBe(202);
    expect(replay.body).toMatchObject({ accepted: true, duplicate: true, messageId: 'dup-2' });
    const next = await post(DEMO, { userId: 'frank', text: 'hi', messageId: 'dup-3' });
    expect(next.body.replies?.[0]?.text).toBe("Hi there! Let's get your weather forecast.");
  });
});

describe('foundation: tenancy', () => {
  it('serves a second tenant with its own pack', async () => {
    const r = await post('/webhooks/webhook/acme/dev/default/support', { userId: 'alice', text: 'ping' });
    expect(r.status).toBe(200);
    expect(r.body.replies?.[0]?.text).toBe('acme echo: ping');
    expect(r.body.sessionKey).toBe('acme:webhook:alice:alice');
  });

  it("refuses tenant demo on acme's channel", async () => {
    const r = await post('/webhooks/webhook/demo/dev/default/support', { userId: 'alice', text: 'x' });
    expect(r.status).toBe(404);
    expect(r.body).toEqual({
      error: {
        code: 'unknown_channel',
        message: "unknown channel 'support'",
        part: 'channel',
        value: 'support',
      },
    });
  });

  it.each([
    ['/webhooks/webhook/nobody/dev/default/web', 'tenant', 'nobody'],
    ['/webhooks/webhook/demo/prod/default/web', 'env', 'prod'],
    ['/webhooks/webhook/demo/dev/blue/web', 'team', 'blue'],
    ['/webhooks/webhook/demo/dev/default/sms', 'channel', 'sms'],
    ['/webhooks/slack/demo/dev/default/web', 'provider', 'slack'],
  ])('answers 404 naming the unknown part for %s', async (p, part, value) => {
    const r = await post(p, { userId: 'u', text: 't' });
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ code: `unknown_${part}`, part, value });
  });
});

describe('foundation: bad input', () => {
  it('answers 400 for malformed JSON', async () => {
    const r = await post(DEMO, '{"userId": "u", "text": ');
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'bad_request' });
    expect(String((r.body.error as { message: string }).message)).toMatch(/^malformed JSON body/);
  });

  it.each([
    [{ text: 'hi' }, "field 'userId' is required (string)"],
    [{ userId: 'u' }, "field 'text' is required (string)"],
    [{ userId: 5, text: 'hi' }, "field 'userId' must be a string"],
    [[1, 2], 'body must be a JSON object'],
  ])('answers 400 naming the field for %j', async (body, message) => {
    const r = await post(DEMO, body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'bad_request', message });
  });

  it('answers 413 for a body over the limit', async () => {
    const r = await post(DEMO, { userId: 'u', text: 'x'.repeat(5000) });
    expect(r.status).toBe(413);
    expect(r.body.error).toMatchObject({ code: 'payload_too_large', limitBytes: 4096 });
  });

  it('turns a trapping component into the flow error reply, and the next message still works', async () => {
    const trap = await post('/webhooks/webhook/demo/dev/default/trap', { userId: 'gina', text: 'trap' });
    expect(trap.status).toBe(200);
    expect(trap.body.status).toBe('failed');
    expect(trap.body.replies?.map((r) => r.text)).toEqual(['Sorry, that broke. Try again.']);
    expect(trap.body.error).toMatchObject({ code: 'component_trap' });
    const again = await post('/webhooks/webhook/demo/dev/default/trap', { userId: 'gina', text: 'trap' });
    expect(again.body.replies?.map((r) => r.text)).toEqual(['Sorry, that broke. Try again.']);
    const other = await post(DEMO, { userId: 'gina', text: 'hi' });
    expect(other.body.replies?.[0]?.text).toBe("Hi there! Let's get your weather forecast.");
  });
});

describe('foundation: health', () => {
  it('reports bus, sessions, packs and components', async () => {
    const res = await fetch(base + '/health');
    expect(res.status).toBe(200);
    const h = (await res.json()) as { status: string; info: Record<string, { status: string }> };
    expect(h.status).toBe('ok');
    expect(Object.keys(h.info).sort()).toEqual(['bus', 'components', 'packs', 'sessions']);
    expect(h.info['packs']).toMatchObject({ status: 'up', loaded: 3 });
    expect(h.info['components']).toMatchObject({ status: 'up', runtime: 'pool', preparedComponents: 3 });
  });
});
