/**
 * A component built here against upstream's greentic:component@0.6.0 world (fixture js-upstream,
 * componentize-js, wit/upstream/) importing the three upstream host interfaces, end to end: real
 * webhooks, flows, the worker pool and Redis sessions.
 *   - greentic:state/state-store: state persists across turns per session, in the SessionStore
 *     (it survives a restart of the runner), and is not visible to another user or tenant, even
 *     when the component passes another tenant's ctx;
 *   - greentic:http/http-client: the tenant's allowed host (a local fake) answers, anything else
 *     is refused before a request leaves;
 *   - greentic:secrets-store/secrets-store: the binding's names only.
 */
import type { INestApplication } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

const call = (name: string, op: string, args?: string): string =>
  `  ${name}:
    component.exec:
      component: js-upstream
      operation: ${op}
${args ? `      args: ${args}\n` : ''}    routing:
      - to: answer
`;

const flows = {
  count: `id: count
type: messaging
nodes:
${call('count', 'count')}  answer:
    reply: { text: "count {{count.payload.count}} {{count.payload.error.code}}" }
`,
  // The component passes a tenant-ctx naming another tenant: the host scopes by the caller anyway.
  countAs: `id: count_as
type: messaging
nodes:
${call('count', 'count', '{ as_tenant: "otherco" }')}  answer:
    reply: { text: "count {{count.payload.count}} {{count.payload.error.code}}" }
`,
  forget: `id: forget
type: messaging
nodes:
${call('forget', 'forget')}  answer:
    reply: { text: "forgot {{forget.payload.ack}}" }
`,
  fetch: `id: fetch
type: messaging
nodes:
${call('get', 'fetch', '{ url: message.text }')}  answer:
    reply: { text: "status={{get.payload.status}} body={{get.payload.body}} error={{get.payload.error.code}}" }
`,
  secrets: `id: secrets
type: messaging
nodes:
  allowed:
    component.exec:
      component: js-upstream
      operation: secret
      args: { name: api_key }
    routing:
      - to: refused
  refused:
    component.exec:
      component: js-upstream
      operation: secret
      args: { name: admin_key }
    routing:
      - to: answer
  answer:
    reply: { text: "allowed={{allowed.payload.value}} refused={{refused.payload.error}} value={{refused.payload.value}}" }
`,
};

const redisPrefix = uniqueRedisPrefix('components-upstream');
let app: INestApplication | undefined;
let base: string;
let bundle: string;
let api: Server;
let apiBase: string;
let forbidden: Server;
let forbiddenBase: string;
const apiHits: string[] = [];
const forbiddenHits: string[] = [];

interface Reply {
  status: number;
  body: { replies?: Array<{ text?: string }>; status?: string; error?: { code: string } };
}

async function post(path: string, userId: string, text: string): Promise<Reply> {
  const res = await fetch(`${base}/webhooks/webhook/${path}?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, text }),
  });
  return { status: res.status, body: (await res.json()) as Reply['body'] };
}

const say = async (path: string, userId: string, text = 'x'): Promise<string> => {
  const r = await post(path, userId, text);
  expect(r.status).toBe(200);
  // A failed flow names its error code, so a failure says why.
  expect(r.body.error?.code).toBeUndefined();
  return (r.body.replies ?? []).map((x) => x.text).join(' | ');
};

async function start(): Promise<void> {
  const started = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_SESSIONS: 'redis',
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: redisPrefix,
    },
  });
  app = started.app;
  base = started.url;
}

async function listen(hits: string[], answer: (url: string) => string): Promise<[Server, string]> {
  const server = createServer((req, res) => {
    hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(answer(req.url ?? ''));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return [server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`];
}

beforeAll(async () => {
  await requireRedis();
  [api, apiBase] = await listen(apiHits, (url) => `forecast for ${url}`);
  [forbidden, forbiddenBase] = await listen(forbiddenHits, () => 'should never be reached');

  process.env['GREENTIC_SECRET_UPCO_DEV_API_KEY'] = 'upco-api-key';
  process.env['GREENTIC_SECRET_UPCO_DEV_ADMIN_KEY'] = 'upco-admin-key';

  const pack = {
    flows: {
      'count.ygtc': flows.count,
      'count_as.ygtc': flows.countAs,
      'forget.ygtc': flows.forget,
      'fetch.ygtc': flows.fetch,
      'secrets.ygtc': flows.secrets,
    },
    components: { 'js-upstream': fixturePath('js-upstream') },
  };
  bundle = writeTempBundle({
    packs: [{ id: 'upstream', ...pack }],
    tenants: {
      upco: {
        packs: ['upstream'],
        // Not a deadline test: a first call instantiating the 12 MB component on a busy machine
        // must not time out.
        limits: { component_deadline_ms: 15_000 },
        http: { allow: [new URL(apiBase).host] },
        channels: {
          count: { pack: 'upstream', flow: 'count' },
          count_as: { pack: 'upstream', flow: 'count_as' },
          forget: { pack: 'upstream', flow: 'forget' },
          fetch: { pack: 'upstream', flow: 'fetch' },
          secrets: { pack: 'upstream', flow: 'secrets', secrets: ['api_key'] },
        },
      },
      otherco: {
        packs: ['upstream'],
        limits: { component_deadline_ms: 15_000 },
        channels: { count: { pack: 'upstream', flow: 'count' } },
      },
    },
  });
  await start();
});

afterAll(async () => {
  await app?.close();
  await Promise.all([
    new Promise<void>((r) => api?.close(() => r())),
    new Promise<void>((r) => forbidden?.close(() => r())),
  ]);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

describe('greentic:state/state-store', () => {
  it('persists across turns per session; another user or tenant starts from nothing', async () => {
    expect(await say('upco/dev/default/count', 'ann')).toBe('count 1 ');
    expect(await say('upco/dev/default/count', 'ann')).toBe('count 2 ');
    expect(await say('upco/dev/default/count', 'bob')).toBe('count 1 ');
    expect(await say('otherco/dev/default/count', 'ann')).toBe('count 1 ');
    expect(await say('upco/dev/default/count', 'ann')).toBe('count 3 ');
  });

  it("ignores a tenant-ctx naming another tenant: the write lands in the caller's session", async () => {
    expect(await say('upco/dev/default/count_as', 'cid')).toBe('count 1 ');
    expect(await say('upco/dev/default/count_as', 'cid')).toBe('count 2 ');
    // otherco's user of that name never saw those writes.
    expect(await say('otherco/dev/default/count', 'cid')).toBe('count 1 ');
  });

  it('lives in the SessionStore: a restarted runner continues the count', async () => {
    await app!.close();
    app = undefined;
    await start();
    expect(await say('upco/dev/default/count', 'ann')).toBe('count 4 ');
    expect(await say('otherco/dev/default/count', 'ann')).toBe('count 2 ');
  });

  it('delete acknowledges, and the next read is a miss', async () => {
    expect(await say('upco/dev/default/forget', 'bob')).toBe('forgot ok');
    expect(await say('upco/dev/default/count', 'bob')).toBe('count 1 ');
  });
});

describe('greentic:http/http-client', () => {
  it("reaches the tenant's allowed host and is refused everywhere else", async () => {
    expect(await say('upco/dev/default/fetch', 'fay', `${apiBase}/paris`)).toBe(
      'status=200 body=forecast for /paris error=',
    );
    expect(apiHits).toEqual(['/paris']);
    for (const url of [
      `${forbiddenBase}/steal`,
      'http://169.254.169.254/latest/meta-data',
      'file:///etc/passwd',
    ]) {
      expect(await say('upco/dev/default/fetch', 'fay', url)).toBe('status= body= error=denied');
    }
    expect(forbiddenHits).toEqual([]);
    expect(apiHits).toEqual(['/paris']);
  });
});

describe('greentic:secrets-store/secrets-store', () => {
  it("reads the binding's secret; one outside the allow-list is refused and its value never leaves", async () => {
    const reply = await say('upco/dev/default/secrets', 'sam');
    expect(reply).toBe('allowed=upco-api-key refused=denied value=');
    expect(reply).not.toContain('upco-admin-key');
  });
});
