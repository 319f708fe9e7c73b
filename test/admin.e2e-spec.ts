import type { INestApplication } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * The admin API: refused to a non-loopback caller without the token, open with it; tenants and
 * bindings, a tenant's flows, session lookup and end, dead-letter replay; and `/openapi.json`.
 *
 * A "remote" caller: a front socket server accepts the test's connection and hands the socket
 * to the runner's HTTP server with its peer address set to 203.0.113.7 (TEST-NET-3), which is
 * all the guard looks at (`req.socket.remoteAddress`); everything else is the real HTTP stack.
 */
const WEATHER_FLOW = readFileSync(path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');
const TOKEN = 'adm-0d9c2f7e-token';
const REMOTE = '203.0.113.7';

let callback: Server;
let callbackStatus = 400;
const callbackGot: { messageId: string; replies: { text?: string }[] }[] = [];

function bundle(): string {
  const cb = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/cb`;
  return writeTempBundle({
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
      demo: {
        packs: ['demo'],
        channels: {
          web: { pack: 'demo', flow: 'weather_bot', secrets: ['api_key'] },
          hook: { pack: 'demo', flow: 'weather_bot', settings: { callback_url: cb } },
        },
      },
      acme: { packs: ['demo'], channels: { web: { pack: 'demo', flow: 'weather_bot' } } },
    },
  });
}

async function remoteFront(app: INestApplication): Promise<{ url: string; close: () => Promise<void> }> {
  const http = app.getHttpServer() as Server;
  const sockets = new Set<net.Socket>();
  const front = net.createServer((socket) => {
    Object.defineProperty(socket, 'remoteAddress', { value: REMOTE, configurable: true });
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    http.emit('connection', socket);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(front.address() as AddressInfo).port}`,
    // The keep-alive sockets are ended here: close() would otherwise wait out the server's
    // keep-alive timeout (Fastify's is 72 s).
    close: () =>
      new Promise((r) => {
        front.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}

async function call(
  base: string,
  method: string,
  p: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(base + p, {
    method,
    headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  callback = createServer((req, res) => {
    let b = '';
    req.on('data', (d: Buffer) => (b += d.toString()));
    req.on('end', () => {
      if (callbackStatus === 200) callbackGot.push(JSON.parse(b) as (typeof callbackGot)[number]);
      res.statusCode = callbackStatus;
      res.end();
    });
  });
  await new Promise<void>((r) => callback.listen(0, '127.0.0.1', r));
});
afterAll(() => {
  callback.close();
});

describe('admin API without a configured token', () => {
  let app: INestApplication;
  let base: string;
  let remote: Awaited<ReturnType<typeof remoteFront>>;

  beforeAll(async () => {
    ({ app, url: base } = await startApp({
      config: {
        PORT: 0,
        LOG_LEVEL: 'silent',
        GREENTIC_BUNDLE: bundle(),
      },
    }));
    remote = await remoteFront(app);
  }, 120_000);
  afterAll(async () => {
    await remote?.close();
    await app?.close();
  });

  it('serves loopback callers and refuses remote ones', async () => {
    expect((await call(base, 'GET', '/admin/tenants')).status).toBe(200);
    for (const p of [
      '/admin/tenants',
      '/admin/tenants/demo/flows',
      '/admin/packs/status',
      '/admin/tenants/demo/dead-letters',
    ]) {
      const r = await call(remote.url, 'GET', p);
      expect(r.status, p).toBe(403);
      expect(r.json).toMatchObject({ error: { code: 'admin_forbidden' } });
    }
    // Webhooks and probes are not admin routes: the remote caller reaches them.
    expect((await call(remote.url, 'GET', '/health/live')).status).toBe(200);
  });
});

describe('admin API with GREENTIC_ADMIN_TOKEN', () => {
  let app: INestApplication;
  let base: string;
  let remote: Awaited<ReturnType<typeof remoteFront>>;
  const auth = { 'x-admin-token': TOKEN };

  beforeAll(async () => {
    ({ app, url: base } = await startApp({
      config: {
        PORT: 0,
        LOG_LEVEL: 'silent',
        GREENTIC_BUNDLE: bundle(),
        GREENTIC_ADMIN_TOKEN: TOKEN,
      },
    }));
    remote = await remoteFront(app);
  }, 120_000);
  afterAll(async () => {
    await remote?.close();
    await app?.close();
  });

  it('refuses a remote caller without the token or with a wrong one, and serves it with the token', async () => {
    expect((await call(remote.url, 'GET', '/admin/tenants')).status).toBe(401);
    expect((await call(remote.url, 'GET', '/admin/tenants', { 'x-admin-token': 'nope' })).status).toBe(401);
    // With a token configured, loopback needs it too.
    expect((await call(base, 'GET', '/admin/tenants')).status).toBe(401);
    const ok = await call(remote.url, 'GET', '/admin/tenants', auth);
    expect(ok.status).toBe(200);
    expect(JSON.stringify(ok.json)).not.toContain(TOKEN);
  });

  it('lists tenants with their bindings, and the flows of a tenant', async () => {
    const { json } = await call(remote.url, 'GET', '/admin/tenants', auth);
    const tenants = json['tenants'] as {
      tenant: string;
      channels: Record<string, unknown>[];
      secrets: { backend: string };
    }[];
    expect(tenants.map((t) => t.tenant).sort()).toEqual(['acme', 'demo']);
    const demo = tenants.find((t) => t.tenant === 'demo')!;
    expect(demo.secrets.backend).toBe('env');
    expect(demo.channels).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          env: 'dev',
          team: 'default',
          channel: 'web',
          provider: 'webhook',
          pack: 'demo',
          flow: 'weather_bot',
          secrets: ['api_key'],
        }),
      ]),
    );
    const one = await call(remote.url, 'GET', '/admin/tenants/acme', auth);
    expect(one.json).toMatchObject({
      tenant: 'acme',
      envs: ['dev'],
      packs: [{ id: 'demo', loadedVersion: '0.1.0' }],
    });
    expect((await call(remote.url, 'GET', '/admin/tenants/nobody', auth)).status).toBe(404);

    const flows = await call(remote.url, 'GET', '/admin/tenants/demo/flows', auth);
    expect(flows.json).toMatchObject({
      tenant: 'demo',
      flows: [
        {
          pack: 'demo',
          id: 'weather_bot',
          type: 'messaging',
          start: 'in',
          nodes: [
            { id: 'in', operation: 'qa.process' },
            { id: 'forecast_weather', operation: 'mcp.exec' },
            { id: 'weather_text', operation: 'templating.handlebars' },
          ],
          boundTo: ['dev/default/web', 'dev/default/hook'],
        },
      ],
    });
  });

  it("looks a session up and ends it; another tenant's path does not find it", async () => {
    const say = (text: string) =>
      call(base, 'POST', '/webhooks/webhook/demo/dev/default/web?wait=true', {}, { userId: 'ada', text });
    expect((await say('hi')).json['status']).toBe('parked');
    const key = encodeURIComponent('demo:webhook:ada:ada');
    const got = await call(remote.url, 'GET', `/admin/tenants/demo/dev/default/sessions/${key}`, auth);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({
      tenant: 'demo',
      key: 'demo:webhook:ada:ada',
      parked: { flow: 'weather_bot', node: 'in', pack: 'demo' },
    });
    expect(
      (await call(remote.url, 'GET', `/admin/tenants/acme/dev/default/sessions/${key}`, auth)).status,
    ).toBe(404);
    expect(
      (
        await call(
          remote.url,
          'GET',
          `/admin/tenants/demo/dev/default/sessions/${encodeURIComponent('demo:webhook:nobody:nobody')}`,
          auth,
        )
      ).status,
    ).toBe(404);
    expect((await call(remote.url, 'DELETE', `/admin/tenants/demo/dev/default/sessions/${key}`)).status).toBe(
      401,
    );
    expect(
      (await call(remote.url, 'DELETE', `/admin/tenants/demo/dev/default/sessions/${key}`, auth)).status,
    ).toBe(204);
    expect(
      (await call(remote.url, 'GET', `/admin/tenants/demo/dev/default/sessions/${key}`, auth)).status,
    ).toBe(404);
    // Ended: the next message starts the flow again instead of answering the parked question.
    const again = await say('Paris');
    expect((again.json['replies'] as { text: string }[])[0]?.text).toBe(
      "Hi there! Let's get your weather forecast.",
    );
  });

  it('lists a dead-lettered reply and replays it once the channel accepts it', async () => {
    callbackStatus = 400;
    const sent = await call(
      base,
      'POST',
      '/webhooks/webhook/demo/dev/default/hook',
      {},
      { userId: 'dl-user', text: 'hi', messageId: 'dl-msg-1' },
    );
    expect(sent.status).toBe(202);
    let entry:
      | { id: string; messageId: string; direction: string; error: { code: string }; originalSubject: string }
      | undefined;
    await vi.waitFor(async () => {
      const list = await call(remote.url, 'GET', '/admin/tenants/demo/dead-letters', auth);
      entry = (list.json['deadLetters'] as (typeof entry)[]).find((e) => e?.messageId === 'dl-msg-1:reply');
      expect(entry).toBeDefined();
    });
    expect(entry).toMatchObject({
      direction: 'egress',
      error: { code: 'egress_failed' },
      originalSubject: 'greentic.messaging.egress.dev.demo.default.hook',
    });
    // Another tenant cannot see or replay it.
    expect(
      (await call(remote.url, 'GET', '/admin/tenants/acme/dead-letters', auth)).json['deadLetters'],
    ).toEqual([]);
    expect(
      (await call(remote.url, 'POST', `/admin/tenants/acme/dead-letters/${entry!.id}/replay`, auth)).status,
    ).toBe(404);

    callbackStatus = 200;
    const replay = await call(
      remote.url,
      'POST',
      `/admin/tenants/demo/dead-letters/${entry!.id}/replay`,
      auth,
    );
    expect(replay.status).toBe(202);
    expect(replay.json).toMatchObject({
      replayed: true,
      subject: 'greentic.messaging.egress.dev.demo.default.hook',
      deadLetter: { replays: 1 },
    });
    await vi.waitFor(() => expect(callbackGot.map((c) => c.messageId)).toContain('dl-msg-1'));
    const delivered = callbackGot.find((c) => c.messageId === 'dl-msg-1')!;
    expect(delivered.replies.map((r) => r.text)).toContain('What location would you like a forecast for?');
  });

  it('publishes an OpenAPI document of the whole HTTP surface', async () => {
    const r = await call(remote.url, 'GET', '/openapi.json');
    expect(r.status).toBe(200);
    expect(r.json['openapi']).toMatch(/^3\./);
    const paths = Object.keys(r.json['paths'] as object);
    expect(paths).toEqual(
      expect.arrayContaining([
        '/webhooks/{provider}/{tenant}/{env}/{team}/{channel}',
        '/health',
        '/health/live',
        '/health/ready',
        '/metrics',
        '/admin/packs/status',
        '/admin/packs/reload',
        '/admin/tenants',
        '/admin/tenants/{tenant}',
        '/admin/tenants/{tenant}/flows',
        '/admin/tenants/{tenant}/{env}/{team}/sessions/{key}',
        '/admin/tenants/{tenant}/dead-letters',
        '/admin/tenants/{tenant}/dead-letters/{id}/replay',
      ]),
    );
  });
});
