import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * `/health` and `/health/ready` (issue #22 item 7): every caller gets the status of each check;
 * the details (pack sources and digests, bus and store facts, unresolved secret names) only a
 * caller the admin API admits. With GREENTIC_ADMIN_TOKEN set, a loopback caller without the
 * token is such an unauthenticated caller.
 */

const TOKEN = 'health-adm-7f3e1c';
const FLOW = 'id: f\ntype: messaging\nnodes:\n  a:\n    reply: { text: hi }\n';
const bundle = writeTempBundle({
  packs: [{ id: 'p', flows: { 'f.ygtc': FLOW } }],
  // A secret ref never set: readiness reports it unresolved, naming tenant, secret and variable.
  tenants: {
    acme: {
      packs: ['p'],
      channels: { web: { pack: 'p', flow: 'f', secret_refs: { signing_secret: 'health_access_unset' } } },
    },
  },
});
const bundleDir = path.dirname(bundle);

const apps: RunnerApp[] = [];
async function start(config: Record<string, string | number>): Promise<string> {
  const { app, url } = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_COMPONENT_POOL_MIN: 0,
      ...config,
    },
  });
  apps.push(app);
  return url;
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, text, json: JSON.parse(text) as Record<string, unknown> };
}

afterAll(async () => {
  for (const app of apps) await app.close();
});

describe('with an admin token configured', () => {
  let url: string;
  beforeAll(async () => {
    url = await start({ GREENTIC_ADMIN_TOKEN: TOKEN });
  });

  it('/health without the token: status per check, no paths, digests or pack list', async () => {
    const h = await get(`${url}/health`);
    expect(h.status).toBe(200);
    expect(h.json).toEqual({
      status: 'ok',
      info: {
        bus: { status: 'up' },
        sessions: { status: 'up' },
        packs: { status: 'up' },
        components: { status: 'up' },
      },
      error: {},
      details: {
        bus: { status: 'up' },
        sessions: { status: 'up' },
        packs: { status: 'up' },
        components: { status: 'up' },
      },
    });
    expect(h.text).not.toContain(bundleDir);
    expect(h.text).not.toContain('sha256');
  });

  it('/health with the token: the full report', async () => {
    const h = await get(`${url}/health`, { 'x-admin-token': TOKEN });
    expect(h.status).toBe(200);
    const packs = (h.json['details'] as Record<string, Record<string, unknown>>)['packs']!;
    expect(packs).toMatchObject({ status: 'up', loaded: 1, providers: expect.arrayContaining(['webhook']) });
    expect(packs['packs']).toEqual([
      expect.objectContaining({ tenant: 'acme', pack: 'p', digest: expect.stringMatching(/^sha256:/) }),
    ]);
    expect(h.text).toContain(bundleDir);
  });

  it('a wrong token is no token', async () => {
    const h = await get(`${url}/health`, { 'x-admin-token': 'guess' });
    expect(h.status).toBe(200);
    expect(h.text).not.toContain('sha256');
    expect(Object.keys(h.json['details'] as object).sort()).toEqual([
      'bus',
      'components',
      'packs',
      'sessions',
    ]);
  });

  it('/health/ready without the token: each check up or down, not which secret is missing', async () => {
    const r = await get(`${url}/health/ready`);
    expect(r.status).toBe(503);
    expect(r.json).toEqual({
      status: 'unavailable',
      checks: {
        lifecycle: { up: true },
        packs: { up: true },
        bus: { up: true },
        sessions: { up: true },
        secrets: { up: false },
      },
    });
    const admin = await get(`${url}/health/ready`, { 'x-admin-token': TOKEN });
    expect(admin.status).toBe(503);
    expect(admin.text).toContain('health_access_unset');
    expect(r.text).not.toContain('health_access_unset');
    expect(admin.json['checks']).toMatchObject({ bus: { up: true, details: { kind: 'memory' } } });
  });

  it('the admin API holds the same pack facts: sources, digests', async () => {
    expect((await get(`${url}/admin/packs/status`)).status).toBe(401);
    const st = await get(`${url}/admin/packs/status`, { 'x-admin-token': TOKEN });
    expect(st.status).toBe(200);
    expect(st.text).toContain('sha256:');
  });
});

describe('without an admin token', () => {
  it('a loopback caller is an admin caller and gets the details, as on the admin routes', async () => {
    const url = await start({});
    const h = await get(`${url}/health`);
    expect(h.status).toBe(200);
    expect((h.json['info'] as Record<string, Record<string, unknown>>)['packs']).toMatchObject({ loaded: 1 });
    expect((await get(`${url}/admin/packs/status`)).status).toBe(200);
  });
});
