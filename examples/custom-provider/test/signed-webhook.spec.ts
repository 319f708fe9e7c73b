import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { RunnerApp } from '../../../src/bootstrap.js';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../../../src/bootstrap.js';
import { FakeServer } from '../../../test/support/fakes/fake-server.js';
import { writeTempBundle, type TempChannel } from '../../../test/support/temp-bundle.js';
import { sign, SignedWebhookModule } from '../src/index.js';

/**
 * The example channel in a real runner: the module is imported with AppModule.forRoot({ imports }),
 * the bundle binds a channel to `provider: signed-webhook`, and nothing in src/ knows about it.
 */

const SECRET = 'example-shared-secret';
const HELLO_FLOW = `id: hello
type: messaging
nodes:
  greet:
    reply:
      text: "Hello {{message.text}}!"
      choices: [Again, Stop]
`;

let app: RunnerApp;
let url: string;
let callback: FakeServer;

async function deliver(body: object, opts: { secret?: string; ts?: number; tenant?: string } = {}) {
  const raw = JSON.stringify(body);
  const ts = String(opts.ts ?? Math.floor(Date.now() / 1000));
  const res = await fetch(`${url}/webhooks/signed-webhook/${opts.tenant ?? 'acme'}/dev/default/hooks`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-signature-timestamp': ts,
      'x-signature': sign(opts.secret ?? SECRET, ts, raw),
    },
    body: raw,
  });
  return {
    status: res.status,
    body: (await res.json().catch(() => undefined)) as Record<string, unknown> | undefined,
  };
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  callback = await new FakeServer(() => ({ status: 204 })).listen();
  const hooks = {
    provider: 'signed-webhook',
    pack: 'hello',
    flow: 'hello',
    settings: { callback_url: `http://127.0.0.1:${callback.port}/inbox` },
    secret_refs: { signing_secret: 'hooks_signing_secret' },
  } as TempChannel;
  const bundle = writeTempBundle({
    packs: [{ id: 'hello', flows: { 'hello.ygtc': HELLO_FLOW } }],
    tenants: {
      acme: {
        packs: ['hello'],
        channels: { hooks },
        secrets: { backend: 'file', options: { path: 'secrets.yaml' } },
      },
    },
  });
  writeFileSync(
    path.join(path.dirname(bundle), 'secrets.yaml'),
    stringify({ 'acme/dev/hooks_signing_secret': SECRET }),
  );
  ({ app, url } = await startApp({
    config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' },
    imports: [SignedWebhookModule],
  }));
});

afterAll(async () => {
  await app?.close();
  await callback?.close();
});

describe('custom provider example: signed-webhook', () => {
  it('is registered by its decorator and listed in /health details', async () => {
    const health = (await (await fetch(`${url}/health`)).json()) as {
      details: Record<string, { providers?: string[] }>;
    };
    const providers = Object.values(health.details).flatMap((d) => d.providers ?? []);
    expect(providers).toContain('signed-webhook');
    expect(providers).toEqual(
      expect.arrayContaining(['webhook', 'slack', 'teams', 'telegram', 'whatsapp', 'webchat']),
    );
  });

  it('runs the flow for a signed message and posts the signed reply to the callback', async () => {
    expect(await deliver({ id: 'm-1', user: 'ada', text: 'world' })).toEqual({
      status: 202,
      body: undefined,
    });
    await until(() => callback.requests.length === 1, 'the callback');
    const req = callback.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.path).toBe('/inbox');
    expect(req.headers['content-type']).toBe('application/json');
    const ts = String(req.headers['x-signature-timestamp']);
    expect(req.headers['x-signature']).toBe(sign(SECRET, ts, req.body));
    expect(JSON.parse(req.body.toString())).toEqual({
      id: 'm-1:reply:0',
      inReplyTo: 'm-1',
      conversation: 'ada',
      user: 'ada',
      text: 'Hello world!',
      choices: ['Again', 'Stop'],
    });
  });

  it('answers a redelivered id once', async () => {
    await deliver({ id: 'm-2', user: 'bob', text: 'once' });
    await deliver({ id: 'm-2', user: 'bob', text: 'once' });
    await deliver({ id: 'm-3', user: 'bob', text: 'twice' });
    await until(
      () => callback.requests.filter((r) => JSON.parse(r.body.toString()).user === 'bob').length >= 2,
      'both answers',
    );
    const texts = callback.requests
      .map((r) => JSON.parse(r.body.toString()) as { user: string; text: string })
      .filter((b) => b.user === 'bob');
    expect(texts.map((b) => b.text)).toEqual(['Hello once!', 'Hello twice!']);
  });

  it('refuses a forged signature and a stale timestamp with 401', async () => {
    const forged = await deliver({ id: 'm-4', user: 'eve', text: 'x' }, { secret: 'guess' });
    expect(forged.status).toBe(401);
    expect(forged.body).toMatchObject({
      error: { code: 'provider_unauthorized', message: 'signed-webhook: signature mismatch' },
    });
    const stale = await deliver(
      { id: 'm-5', user: 'eve', text: 'x' },
      { ts: Math.floor(Date.now() / 1000) - 3600 },
    );
    expect(stale.status).toBe(401);
    expect((await deliver({ id: 'm-6', user: 'eve', text: 'x' }, { tenant: 'nobody' })).status).toBe(404);
    expect(callback.requests.filter((r) => JSON.parse(r.body.toString()).user === 'eve')).toEqual([]);
  });
});
