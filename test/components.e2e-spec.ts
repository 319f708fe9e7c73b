/**
 * The component pool end to end: real webhooks, flows, sessions and the worker pool.
 *   - a looping component answers with the flow's error reply within deadline + 100 ms, while
 *     another tenant's echo calls keep answering;
 *   - a memory bomb is discarded at its cap, and the tenant keeps working;
 *   - both component worlds run in one flow;
 *   - the greentic:host imports: state committed with the session, secrets through the binding's
 *     allow-list, HTTP only to the tenant's allowed hosts;
 *   - `/health` shows the pool per tenant.
 */
import type { INestApplication } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle } from './support/temp-bundle.js';

const LOOP_DEADLINE_MS = 300;

const flows = {
  looper: `id: looper
type: messaging
meta:
  error_reply: "That took too long."
nodes:
  spin:
    component.exec:
      component: loop
      operation: execute
    routing:
      - to: after
  after:
    reply: { text: "unreachable" }
`,
  bomber: `id: bomber
type: messaging
meta:
  error_reply: "That needed too much memory."
nodes:
  grow:
    component.exec:
      component: grow
      operation: execute
    routing:
      - to: after
  after:
    reply: { text: "unreachable" }
`,
  echo: `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "echo: {{call.payload}}" }
`,
  // The hazard tenant's echo waits out a replacement worker's start after a kill (node timeout).
  slowEcho: `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    timeout: { duration: 10s }
    routing:
      - to: answer
  answer:
    reply: { text: "echo: {{call.payload}}" }
`,
  worlds: `id: worlds
type: messaging
nodes:
  shout:
    component.exec:
      component: js-v01
      operation: execute
    routing:
      - to: add
  add:
    component.exec:
      component: js-v06
      operation: sum
      args:
        values: [1, 2, 3]
    routing:
      - to: both
  both:
    component.exec:
      component: echo
      operation: execute
      args:
        shout: shout.payload
        sum: add.payload.sum
    routing:
      - to: answer
  answer:
    reply: { text: "{{both.payload.shout}} {{both.payload.sum}}" }
`,
  count: `id: count
type: messaging
nodes:
  count:
    component.exec:
      component: js-host
      operation: count
    routing:
      - to: answer
  answer:
    reply: { text: "count {{count.payload.count}}" }
`,
  secrets: `id: secrets
type: messaging
nodes:
  allowed:
    component.exec:
      component: js-host
      operation: secret
      args: { name: api_key }
    routing:
      - to: refused
  refused:
    component.exec:
      component: js-host
      operation: secret
      args: { name: admin_key }
    routing:
      - to: answer
  answer:
    reply: { text: "allowed={{allowed.payload.value}} refused={{refused.payload.error.code}} value={{refused.payload.value}}" }
`,
  fetch: `id: fetch
type: messaging
nodes:
  get:
    component.exec:
      component: js-host
      operation: fetch
      args:
        url: message.text
    routing:
      - to: answer
  answer:
    reply: { text: "status={{get.payload.status}} body={{get.payload.body}} error={{get.payload.error.code}}" }
`,
};

let app: INestApplication;
let base: string;
let api: Server;
let apiBase: string;
const apiHits: string[] = [];

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

const text = (r: Reply): string => (r.body.replies ?? []).map((x) => x.text).join(' | ');

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

beforeAll(async () => {
  api = createServer((req, res) => {
    apiHits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`forecast for ${req.url}`);
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiBase = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

  process.env['GREENTIC_SECRET_HOSTED_DEV_API_KEY'] = 'hosted-api-key';
  process.env['GREENTIC_SECRET_HOSTED_DEV_ADMIN_KEY'] = 'hosted-admin-key';
  process.env['GREENTIC_SECRET_FASTCO_DEV_API_KEY'] = 'fastco-api-key';

  const bundle = writeTempBundle({
    packs: [
      {
        id: 'hazards',
        flows: { 'looper.ygtc': flows.looper, 'bomber.ygtc': flows.bomber, 'echo.ygtc': flows.slowEcho },
        components: { loop: fixturePath('loop'), grow: fixturePath('grow'), echo: fixturePath('echo') },
      },
      { id: 'acme', flows: { 'echo.ygtc': flows.echo }, components: { echo: fixturePath('echo') } },
      {
        id: 'worlds',
        flows: { 'worlds.ygtc': flows.worlds },
        components: {
          echo: fixturePath('echo'),
          'js-v01': fixturePath('js-v01'),
          'js-v06': fixturePath('js-v06'),
        },
      },
      {
        id: 'hosted',
        flows: { 'count.ygtc': flows.count, 'secrets.ygtc': flows.secrets, 'fetch.ygtc': flows.fetch },
        components: { 'js-host': fixturePath('js-host') },
      },
    ],
    tenants: {
      slowco: {
        packs: ['hazards'],
        limits: { component_deadline_ms: LOOP_DEADLINE_MS, component_memory_mb: 32 },
        channels: {
          loop: { pack: 'hazards', flow: 'looper' },
          bomb: { pack: 'hazards', flow: 'bomber' },
          echo: { pack: 'hazards', flow: 'echo' },
        },
      },
      fastco: { packs: ['acme'], channels: { echo: { pack: 'acme', flow: 'echo' } } },
      mixed: { packs: ['worlds'], channels: { web: { pack: 'worlds', flow: 'worlds' } } },
      hosted: {
        packs: ['hosted'],
        http: { allow: [new URL(apiBase).host] },
        channels: {
          count: { pack: 'hosted', flow: 'count' },
          secrets: { pack: 'hosted', flow: 'secrets', secrets: ['api_key'] },
          fetch: { pack: 'hosted', flow: 'fetch' },
        },
      },
    },
  });
  const started = await startApp({ config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent' } });
  app = started.app;
  base = started.url;
});

afterAll(async () => {
  await app?.close();
  await new Promise<void>((r) => api?.close(() => r()));
});

describe('deadlines: a looping component', () => {
  it("answers with the flow's error reply within deadline + 100 ms, while another tenant keeps answering", async () => {
    // Warm both tenants' workers, so the measurement is the deadline and not a worker's start.
    expect(text(await post('slowco/dev/default/echo', 'warm', 'w'))).toBe('echo: w');
    expect(text(await post('fastco/dev/default/echo', 'warm', 'w'))).toBe('echo: w');

    const started = performance.now();
    const looping = post('slowco/dev/default/loop', 'looper', 'spin').then((r) => ({
      r,
      ms: performance.now() - started,
    }));
    let finished = false;
    void looping.then(() => (finished = true));
    const latencies: number[] = [];
    let i = 0;
    while (!finished) {
      const t0 = performance.now();
      const r = await post('fastco/dev/default/echo', `u${i % 5}`, `n${i}`);
      latencies.push(performance.now() - t0);
      expect(r.status).toBe(200);
      expect(text(r)).toBe(`echo: n${i}`);
      i++;
    }
    const { r, ms } = await looping;
    console.log(
      `loop reply after ${ms.toFixed(0)} ms (deadline ${LOOP_DEADLINE_MS} ms); fastco echo meanwhile: ${latencies.length} calls, ` +
        `p50 ${percentile(latencies, 0.5).toFixed(2)} ms, p99 ${percentile(latencies, 0.99).toFixed(2)} ms`,
    );
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('failed');
    expect(r.body.error?.code).toBe('component_timeout');
    expect(text(r)).toBe('That took too long.');
    expect(ms).toBeLessThan(LOOP_DEADLINE_MS + 100);
    expect(latencies.length).toBeGreaterThan(5);

    // The stuck worker was stopped and replaced: the tenant answers again.
    expect(text(await post('slowco/dev/default/echo', 'after', 'again'))).toBe('echo: again');
  });
});

describe('memory cap: a memory bomb', () => {
  it('is discarded at its cap with the flow error reply; the tenant keeps working', async () => {
    const r = await post('slowco/dev/default/bomb', 'bomber', 'grow');
    expect(r.body.error?.code).toBe('component_memory_exceeded');
    expect(text(r)).toBe('That needed too much memory.');
    expect(text(await post('slowco/dev/default/echo', 'after-bomb', 'fine'))).toBe('echo: fine');
  });
});

describe('both worlds', () => {
  it('runs 0.1 (WAT and JS) and 0.6 components in one flow', async () => {
    const r = await post('mixed/dev/default/web', 'alice', 'hello');
    expect(r.body.status).toBe('completed');
    expect(text(r)).toBe('HELLO 6');
  });
});

describe('greentic:host imports', () => {
  it('state: commits with the session, per user and tenant', async () => {
    expect(text(await post('hosted/dev/default/count', 'ann', 'x'))).toBe('count 1');
    expect(text(await post('hosted/dev/default/count', 'ann', 'x'))).toBe('count 2');
    expect(text(await post('hosted/dev/default/count', 'bob', 'x'))).toBe('count 1');
    expect(text(await post('hosted/dev/default/count', 'ann', 'x'))).toBe('count 3');
  });

  it("secrets: the binding's names of the calling tenant only", async () => {
    const r = await post('hosted/dev/default/secrets', 'sam', 'x');
    expect(text(r)).toBe('allowed=hosted-api-key refused=denied value=');
  });

  it("http: the tenant's allowed host works, others are refused", async () => {
    const ok = await post('hosted/dev/default/fetch', 'fay', `${apiBase}/paris`);
    expect(text(ok)).toBe('status=200 body=forecast for /paris error=');
    const before = apiHits.length;
    const denied = await post('hosted/dev/default/fetch', 'fay', 'http://169.254.169.254/latest/meta-data');
    expect(text(denied)).toBe('status= body= error=denied');
    expect(apiHits.length).toBe(before);
  });
});

describe('/health', () => {
  it('shows the pool per tenant: workers, timeouts, memory kills, limits', async () => {
    const res = await fetch(`${base}/health`);
    const h = (await res.json()) as { info: Record<string, Record<string, unknown>> };
    const components = h.info['components'] as {
      status: string;
      runtime: string;
      tenants: Record<string, Record<string, unknown>>;
    };
    expect(components.status).toBe('up');
    expect(components.runtime).toBe('pool');
    expect(components.tenants['slowco']).toMatchObject({
      timeouts: 1,
      memoryKills: 1,
      limits: { deadlineMs: LOOP_DEADLINE_MS, memoryMb: 32 },
    });
    expect(components.tenants['fastco']).toMatchObject({
      timeouts: 0,
      memoryKills: 0,
      workers: expect.any(Number),
    });
    expect(Object.keys(components.tenants).sort()).toEqual(['fastco', 'hosted', 'mixed', 'slowco']);
  });
});

describe('/metrics', () => {
  it('exports pool workers, in-flight and queued calls, kills and busy refusals per tenant', async () => {
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    const value = (name: string, ...labels: string[]): number | undefined => {
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(value('greentic_component_pool_workers', 'tenant="fastco"')).toBeGreaterThanOrEqual(1);
    expect(value('greentic_component_pool_queued', 'tenant="slowco"')).toBe(0);
    expect(value('greentic_component_pool_inflight', 'tenant="mixed"')).toBe(0);
    expect(value('greentic_component_pool_kills_total', 'tenant="slowco"', 'reason="timeout"')).toBe(1);
    expect(value('greentic_component_pool_kills_total', 'tenant="slowco"', 'reason="memory"')).toBe(1);
    expect(text).not.toContain('tenant="#prepare"');
  });
});
