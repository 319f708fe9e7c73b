import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { writeTempBundle } from './support/temp-bundle.js';

/** The one webhook route serves every method; a channel answers only those its provider takes. */

let app: RunnerApp;
let url: string;
const WEB = '/webhooks/webhook/acme/dev/default/web';

beforeAll(async () => {
  const bundle = writeTempBundle({
    packs: [
      { id: 'p', flows: { 'f.ygtc': 'id: f\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n' } },
    ],
    tenants: { acme: { packs: ['p'], channels: { web: { pack: 'p', flow: 'f' } } } },
  });
  ({ app, url } = await startApp({
    config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent', GREENTIC_COMPONENT_POOL_MIN: 0 },
  }));
});

afterAll(async () => {
  await app?.close();
});

describe('webhook methods', () => {
  it('GET on a webhook route is 405 with Allow: POST', async () => {
    const res = await fetch(url + WEB);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST');
    expect(await res.json()).toEqual({
      error: {
        code: 'method_not_allowed',
        message: "provider 'webhook' accepts POST only, not GET",
        allow: ['POST'],
      },
    });
  });

  it('HEAD, PUT and DELETE are 405 with Allow: POST too', async () => {
    for (const method of ['HEAD', 'PUT', 'DELETE']) {
      const res = await fetch(url + WEB, { method });
      expect(res.status, method).toBe(405);
      expect(res.headers.get('allow'), method).toBe('POST');
    }
  });

  it('POST still runs the flow', async () => {
    const res = await fetch(`${url}${WEB}?wait=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'ada', text: 'hello' }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { replies: { text: string }[] }).replies.map((r) => r.text)).toEqual([
      'hi',
    ]);
  });

  it('an unknown tenant stays 404 whatever the method', async () => {
    const res = await fetch(url + '/webhooks/webhook/nobody/dev/default/web');
    expect(res.status).toBe(404);
    expect(res.headers.get('allow')).toBeNull();
  });
});
