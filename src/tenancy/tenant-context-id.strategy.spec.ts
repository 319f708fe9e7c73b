import { ContextIdFactory, type HostComponentInfo } from '@nestjs/core';
import { describe, expect, it } from 'vitest';
import { parseBundle } from './bundle.loader.js';
import { BundleRegistry } from './bundle-registry.service.js';
import { TenantContextIdStrategy } from './tenant-context-id.strategy.js';

const registry = new BundleRegistry(
  parseBundle(
    `
tenants:
  a:
    packs: [{ id: p, source: file:./p }]
    envs: { dev: { teams: { default: { channels: { web: { provider: webhook, pack: p, flow: f } } } } } }
  b:
    packs: [{ id: p, source: file:./p }]
    envs: { dev: { teams: { default: { channels: { web: { provider: webhook, pack: p, flow: f } } } } } }
`,
    '/x/bundle.yaml',
  ),
);

const durable: HostComponentInfo = { isTreeDurable: true, token: 'x' };
const plain: HostComponentInfo = { isTreeDurable: false, token: 'x' };

function attach(s: TenantContextIdStrategy, params: Record<string, string>) {
  const own = ContextIdFactory.create();
  const r = s.attach(own, { params });
  if (!r || typeof r === 'function') throw new Error('expected a resolver with payload');
  return { own, resolved: r.resolve(durable), plain: r.resolve(plain), payload: r.payload };
}

describe('TenantContextIdStrategy', () => {
  const s = new TenantContextIdStrategy(registry);

  it('gives every request of one tenant the same durable sub-tree', () => {
    const x = attach(s, { tenant: 'a', env: 'dev', team: 'default', channel: 'web' });
    const y = attach(s, { tenant: 'a', env: 'dev', team: 'default', channel: 'web' });
    expect(x.resolved).toBe(y.resolved);
    expect(x.payload).toEqual({ tenantId: 'a', envId: 'dev', teamId: 'default' });
    // Non-durable providers still get the request's own context.
    expect(x.plain).toBe(x.own);
  });

  it('gives another tenant another sub-tree', () => {
    const x = attach(s, { tenant: 'a', env: 'dev', team: 'default' });
    const y = attach(s, { tenant: 'b', env: 'dev', team: 'default' });
    expect(x.resolved).not.toBe(y.resolved);
  });

  it('shares one unresolved tree for unknown tenancies instead of growing the container', () => {
    const x = attach(s, { tenant: 'nope', env: 'dev', team: 'default' });
    const y = attach(s, { tenant: 'other-nope', env: 'dev', team: 'default' });
    expect(x.resolved).toBe(y.resolved);
    expect(x.payload).toEqual({});
    const known = attach(s, { tenant: 'a', env: 'dev', team: 'default' });
    expect(known.resolved).not.toBe(x.resolved);
  });

  it('reads tenancy from a bus subject', () => {
    const own = ContextIdFactory.create();
    const r = s.attach(own, {
      context: { getSubject: () => 'greentic.messaging.ingress.dev.b.default.web' },
    });
    if (!r || typeof r === 'function') throw new Error('expected a resolver');
    expect(r.payload).toEqual({ tenantId: 'b', envId: 'dev', teamId: 'default' });
  });
});
