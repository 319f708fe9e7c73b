import { Logger } from '@nestjs/common';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixtureSpec } from '../../../test/fixtures/fixture-paths.js';
import { SecretAccessError } from '../../common/errors.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';
import type { ComponentCallContext, PreparedComponent } from '../../core/component-runtime.js';
import { PooledComponentRuntime } from '../pool/pooled-component.runtime.js';
import { STATE_ROOT, stateOp } from './component-state.js';
import { DEFAULT_HTTP_POLICY, guestFetch, hostAllowed, type HttpPolicy } from './http-fetch.js';
import { hostInterfaceOf } from './host-imports.js';

// ---- a loopback HTTP server standing in for a tenant's API --------------------------------

let server: Server;
let base: string;
let port: number;
const seen: Array<{ method: string; url: string; body: string; auth?: string }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body, auth: req.headers['authorization'] });
      if (req.url === '/big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.alloc(64 * 1024, 1));
      } else if (req.url === '/stream') {
        // No content-length: the cap must hold on the streamed body too.
        res.writeHead(200);
        for (let i = 0; i < 8; i++) res.write(Buffer.alloc(8 * 1024, 2));
        res.end();
      } else if (req.url === '/slow') {
        setTimeout(() => res.end('late'), 1_000);
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://example.invalid/elsewhere' });
        res.end();
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'x-echo': req.method ?? '' });
        res.end(JSON.stringify({ ok: true, method: req.method, path: req.url, body }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

const policy = (over: Partial<HttpPolicy> = {}): HttpPolicy => ({
  ...DEFAULT_HTTP_POLICY,
  allow: [`127.0.0.1:${port}`],
  ...over,
});

describe('http allow-list', () => {
  it('matches hosts, ports and subdomain wildcards', () => {
    const allow = ['api.example.com', 'svc.local:8443', '*.weather.test', '[::1]:9000'];
    const ok = (u: string): boolean => hostAllowed(new URL(u), allow);
    expect(ok('https://api.example.com/v1')).toBe(true);
    expect(ok('http://API.example.com:8080/')).toBe(true);
    expect(ok('https://evil.api.example.com/')).toBe(false);
    expect(ok('https://api.example.com.evil.net/')).toBe(false);
    expect(ok('https://svc.local:8443/')).toBe(true);
    expect(ok('https://svc.local/')).toBe(false);
    expect(ok('https://eu.weather.test/')).toBe(true);
    expect(ok('https://weather.test/')).toBe(false);
    expect(ok('http://[::1]:9000/')).toBe(true);
    expect(hostAllowed(new URL('https://api.example.com/'), [])).toBe(false);
  });

  it('fetches from an allowed loopback server', async () => {
    const r = await guestFetch(
      {
        method: 'POST',
        url: `${base}/hello?x=1`,
        headers: [['authorization', 'Bearer t']],
        body: new TextEncoder().encode('hi'),
      },
      policy(),
      { remainingMs: 5_000 },
    );
    expect(r.tag).toBe('ok');
    const val = r.val as { status: number; headers: Array<[string, string]>; body: Uint8Array };
    expect(val.status).toBe(200);
    expect(val.headers).toContainEqual(['x-echo', 'POST']);
    expect(JSON.parse(new TextDecoder().decode(val.body))).toEqual({
      ok: true,
      method: 'POST',
      path: '/hello?x=1',
      body: 'hi',
    });
    expect(seen.at(-1)).toMatchObject({ auth: 'Bearer t' });
  });

  it('refuses what the policy does not allow, without sending anything', async () => {
    const before = seen.length;
    const cases: Array<[unknown, string]> = [
      [{ method: 'GET', url: `http://localhost:${port}/`, headers: [] }, 'denied'],
      [{ method: 'GET', url: `http://127.0.0.1:${port + 1}/`, headers: [] }, 'denied'],
      [{ method: 'GET', url: 'file:///etc/passwd', headers: [] }, 'denied'],
      [{ method: 'GET', url: `http://user:pw@127.0.0.1:${port}/`, headers: [] }, 'invalid'],
      [{ method: 'GET', url: `${base}/`, headers: [['host', 'other']] }, 'invalid'],
      [{ method: 'BREW', url: `${base}/`, headers: [] }, 'invalid'],
      [{ method: 'GET', url: 'not a url', headers: [] }, 'invalid'],
      [{ method: 'POST', url: `${base}/`, headers: [], body: new Uint8Array(2 * 1024 * 1024) }, 'too-large'],
    ];
    for (const [req, code] of cases) {
      const r = await guestFetch(req, policy(), { remainingMs: 5_000 });
      expect(r).toMatchObject({ tag: 'err', val: { code } });
    }
    expect(seen.length).toBe(before);
  });

  it('caps response sizes, times out, and does not follow redirects', async () => {
    const small = policy({ maxResponseBytes: 16 * 1024 });
    expect(
      await guestFetch({ method: 'GET', url: `${base}/big`, headers: [] }, small, { remainingMs: 5_000 }),
    ).toMatchObject({
      tag: 'err',
      val: { code: 'too-large' },
    });
    expect(
      await guestFetch({ method: 'GET', url: `${base}/stream`, headers: [] }, small, { remainingMs: 5_000 }),
    ).toMatchObject({
      tag: 'err',
      val: { code: 'too-large' },
    });
    expect(
      await guestFetch({ method: 'GET', url: `${base}/slow`, headers: [], timeoutMs: 100 }, policy(), {
        remainingMs: 5_000,
      }),
    ).toMatchObject({ tag: 'err', val: { code: 'timeout' } });
    // The call's remaining deadline caps the timeout too.
    expect(
      await guestFetch({ method: 'GET', url: `${base}/slow`, headers: [] }, policy(), { remainingMs: 150 }),
    ).toMatchObject({
      tag: 'err',
      val: { code: 'timeout' },
    });
    const r = await guestFetch({ method: 'GET', url: `${base}/redirect`, headers: [] }, policy(), {
      remainingMs: 5_000,
    });
    expect(r).toMatchObject({ tag: 'ok', val: { status: 302 } });
  });
});

describe('component state', () => {
  it('reads and writes per component, copy-on-write', () => {
    const loaded = { [STATE_ROOT]: { other: { k: 'theirs' } } };
    const session: Record<string, unknown> = { ...loaded };
    expect(stateOp(session, 'c', 'get', ['k'])).toEqual({ tag: 'ok', val: undefined });
    expect(stateOp(session, 'c', 'set', ['k', 'v1'])).toEqual({ tag: 'ok', val: undefined });
    expect(stateOp(session, 'c', 'get', ['k'])).toEqual({ tag: 'ok', val: 'v1' });
    expect(stateOp(session, 'other', 'get', ['k'])).toEqual({ tag: 'ok', val: 'theirs' });
    expect(stateOp(session, 'c', 'delete', ['k'])).toEqual({ tag: 'ok', val: true });
    expect(stateOp(session, 'c', 'delete', ['k'])).toEqual({ tag: 'ok', val: false });
    // The object the store loaded is untouched.
    expect(loaded[STATE_ROOT]).toEqual({ other: { k: 'theirs' } });
  });

  it('refuses bad keys, oversized values and calls without a session', () => {
    const session: Record<string, unknown> = {};
    expect(stateOp(session, 'c', 'set', ['', 'v'])).toMatchObject({ tag: 'err', val: { code: 'invalid' } });
    expect(stateOp(session, 'c', 'set', ['__proto__', 'v'])).toMatchObject({
      tag: 'err',
      val: { code: 'invalid' },
    });
    expect(stateOp(session, 'c', 'set', ['k', 'x'.repeat(70_000)])).toMatchObject({
      tag: 'err',
      val: { code: 'too-large' },
    });
    for (let i = 0; i < 4; i++)
      expect(stateOp(session, 'c', 'set', [`k${i}`, 'x'.repeat(60_000)]).tag).toBe('ok');
    expect(stateOp(session, 'c', 'set', ['k9', 'x'.repeat(60_000)])).toMatchObject({
      tag: 'err',
      val: { code: 'too-large' },
    });
    expect(stateOp(undefined, 'c', 'get', ['k'])).toMatchObject({ tag: 'err', val: { code: 'unavailable' } });
  });

  it('knows the host interface names jco uses', () => {
    expect(hostInterfaceOf('greentic:host/secrets')).toBe('secrets');
    expect(hostInterfaceOf('greentic:host/http@0.1.0')).toBe('http');
    expect(hostInterfaceOf('greentic:host/http@9.9.9')).toBeUndefined();
    expect(hostInterfaceOf('greentic:host/filesystem')).toBeUndefined();
  });
});

// ---- a JS component using every host import, through the pool -----------------------------

describe('greentic:host imports through the pool', () => {
  const secrets: Record<string, Record<string, string>> = {
    a: { api_key: 'a-secret-value', other_key: 'a-other' },
    b: { api_key: 'b-secret-value' },
  };
  const secretsService = {
    get: vi.fn(async (tenant: TenantCtx, name: string, allowed?: readonly string[]) => {
      if (allowed && !allowed.includes(name))
        throw new SecretAccessError('secret_denied', `secret '${name}' is not allowed`);
      return secrets[tenant.tenantId]?.[name];
    }),
  };
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  let runtime: PooledComponentRuntime;
  let host: PreparedComponent;

  beforeAll(async () => {
    provider.register();
    runtime = new PooledComponentRuntime({
      settings: { deadlineMs: 5_000 },
      host: {
        secrets: secretsService,
        httpPolicy: (t) => (t.tenantId === 'a' ? policy() : undefined),
      },
    });
    host = await runtime.prepare(await fixtureSpec('js-host'));
  });

  afterAll(async () => {
    await runtime.close();
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  const a: TenantCtx = { tenantId: 'a', envId: 'dev' };
  const b: TenantCtx = { tenantId: 'b', envId: 'dev' };
  const ctx = (over: Partial<ComponentCallContext> = {}): ComponentCallContext => ({
    flowId: 'f',
    nodeId: 'n',
    messageId: 'm',
    userId: 'u',
    sessionKey: 'a:webhook:c:u',
    text: '',
    ...over,
  });
  const run = (t: TenantCtx, operation: string, input: unknown, over: Partial<ComponentCallContext> = {}) =>
    runtime.invoke(t, { component: host, operation, input, ctx: ctx(over) });

  it('declares its operations and imports', () => {
    expect(host.operations.map((o) => o.name)).toEqual([
      'secret',
      'state_get',
      'state_set',
      'state_delete',
      'count',
      'fetch',
      'log',
      'event',
    ]);
  });

  it('secrets.get: the calling tenant only, and only names the binding allows', async () => {
    expect(await run(a, 'secret', { name: 'api_key' }, { allowedSecrets: ['api_key'] })).toEqual({
      value: 'a-secret-value',
    });
    expect(await run(b, 'secret', { name: 'api_key' }, { allowedSecrets: ['api_key'] })).toEqual({
      value: 'b-secret-value',
    });
    // On the backend, but not on the binding's allow-list: refused before any backend read.
    const calls = secretsService.get.mock.calls.length;
    expect(await run(a, 'secret', { name: 'other_key' }, { allowedSecrets: ['api_key'] })).toEqual({
      error: { code: 'denied', message: "secret 'other_key' is not allowed for this binding" },
    });
    expect(secretsService.get.mock.calls.length).toBe(calls);
    // Another tenant's name never resolves to that tenant: the host reads for the caller only.
    expect(await run(a, 'secret', { name: 'b/dev/api_key' }, { allowedSecrets: ['api_key'] })).toMatchObject({
      error: { code: 'denied' },
    });
    // No binding at all: nothing is allowed.
    expect(await run(a, 'secret', { name: 'api_key' })).toMatchObject({ error: { code: 'denied' } });
    expect(
      secretsService.get.mock.calls.every(([t, name]) =>
        t.tenantId === 'a' ? name === 'api_key' : t.tenantId === 'b',
      ),
    ).toBe(true);
  });

  it('state: lives in the session data the caller commits, per tenant session', async () => {
    const session: Record<string, unknown> = { greeting: 'hi' };
    expect(await run(a, 'count', {}, { session })).toEqual({ count: 1 });
    expect(await run(a, 'count', {}, { session })).toEqual({ count: 2 });
    expect(session).toEqual({ greeting: 'hi', [STATE_ROOT]: { 'js-host': { count: '2' } } });
    // Another session (another user, or another tenant) starts from its own data.
    const other: Record<string, unknown> = {};
    expect(await run(b, 'count', {}, { session: other })).toEqual({ count: 1 });
    expect(await run(a, 'state_set', { key: 'city', value: 'Oslo' }, { session })).toEqual({ done: true });
    expect(await run(a, 'state_get', { key: 'city' }, { session })).toEqual({ value: 'Oslo' });
    expect(await run(a, 'state_delete', { key: 'city' }, { session })).toEqual({ existed: true });
    expect(await run(a, 'state_get', { key: 'city' }, { session })).toEqual({ value: null });
    expect(await run(a, 'state_get', { key: 'city' })).toMatchObject({ error: { code: 'unavailable' } });
  });

  it('http.fetch: allowed loopback host works, other hosts and tenants are refused', async () => {
    const ok = (await run(a, 'fetch', { url: `${base}/from-component`, method: 'POST', body: 'ping' })) as {
      status: number;
      body: string;
    };
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ path: '/from-component', body: 'ping' });
    const before = seen.length;
    expect(await run(a, 'fetch', { url: 'http://169.254.169.254/latest/meta-data' })).toMatchObject({
      error: { code: 'denied' },
    });
    // Tenant b has no allow-list: its component cannot reach a's allowed host.
    expect(await run(b, 'fetch', { url: `${base}/from-b` })).toMatchObject({ error: { code: 'denied' } });
    expect(seen.length).toBe(before);
  });

  it('log: lines carry the tenant, component and call ids', async () => {
    const spy = vi.spyOn(Logger.prototype, 'warn');
    await run(
      a,
      'log',
      { level: 'warn', message: 'low on tokens', fields: { left: 3 } },
      { traceId: 'abc123' },
    );
    const line = spy.mock.calls.find(([, msg]) => msg === 'low on tokens');
    spy.mockRestore();
    expect(line?.[0]).toMatchObject({
      tenant: 'a',
      env: 'dev',
      component: 'js-host',
      operation: 'log',
      flow: 'f',
      node: 'n',
      traceId: 'abc123',
      fields: { left: 3 },
    });
  });

  it('telemetry: events land on the span of the component call', async () => {
    const tracer = trace.getTracer('test');
    await tracer.startActiveSpan('component js-host', async (span) => {
      await run(a, 'event', { name: 'cache.miss', attributes: { key: 'paris' } });
      span.end();
    });
    const spans = exporter.getFinishedSpans();
    const span = spans.find((s) => s.name === 'component js-host');
    expect(span?.events.map((e) => [e.name, e.attributes])).toEqual([
      ['cache.miss', { key: 'paris', 'greentic.component': 'js-host' }],
    ]);
  });
});
