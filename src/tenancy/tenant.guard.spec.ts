import { Inject, Injectable, Scope, type ExecutionContext } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnknownTenancyError } from '../common/errors.js';
import { RunnerConfigModule } from '../config/config.module.js';
import { validateRunnerConfig } from '../config/runner-config.js';
import { TENANT_CTX, type TenantCtx } from '../core/tenant-ctx.js';
import { parseBundle } from './bundle.loader.js';
import { channelOf, tenancyOf, type TenancyCarrier } from './resolved-tenancy.js';
import { TenancyModule } from './tenancy.module.js';
import { TenantGuard } from './tenant.guard.js';
import { TenantScopes } from './tenant-scopes.service.js';

const bundle = parseBundle(
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
);

/** A tenant-bound service, as TenantSessions and MessageProcessor are: it counts its builds. */
@Injectable({ scope: Scope.REQUEST, durable: true })
class TenantProbe {
  static built = 0;
  constructor(@Inject(TENANT_CTX) readonly tenant: TenantCtx) {
    TenantProbe.built++;
  }
}

function http(params: Record<string, string>, headers: Record<string, string> = {}) {
  const req: TenancyCarrier & { params: Record<string, string>; headers: Record<string, string> } = {
    params,
    headers,
  };
  const ctx = {
    getType: () => 'http',
    switchToHttp: () => ({ getRequest: () => req }),
  } as unknown as ExecutionContext;
  return { req, ctx };
}

function bus(subject: string) {
  const carrier: TenancyCarrier & { getSubject(): string } = { getSubject: () => subject };
  const ctx = {
    getType: () => 'rpc',
    switchToRpc: () => ({ getContext: () => carrier }),
  } as unknown as ExecutionContext;
  return { carrier, ctx };
}

describe('TenantGuard and TenantScopes', () => {
  let app: TestingModule;
  let guard: TenantGuard;
  const web = (tenant: string) => ({ tenant, env: 'dev', team: 'default', channel: 'web' });

  beforeAll(async () => {
    app = await Test.createTestingModule({
      imports: [RunnerConfigModule.forRoot(validateRunnerConfig({}), { bundle }), TenancyModule],
      providers: [TenantProbe],
    }).compile();
    guard = app.get(TenantGuard);
  });
  afterAll(() => app.close());

  it('resolves a route once and leaves the typed tenancy on the request, with the tenant scope', async () => {
    const { req, ctx } = http(web('a'));
    expect(guard.canActivate(ctx)).toBe(true);
    const t = tenancyOf(req);
    expect(t.tenant).toEqual({ tenantId: 'a', envId: 'dev', teamId: 'default' });
    expect(channelOf(req).channel.id).toBe('web');
    expect(t.binding.id).toBe('a');
    expect(t.scope).toBe(app.get(TenantScopes).of(t.tenant));
    expect((await t.scope.get(TenantProbe)).tenant).toBe(t.tenant);
  });

  it('resolves a bus delivery from its subject', () => {
    const { carrier, ctx } = bus('greentic.messaging.ingress.dev.b.default.web');
    guard.canActivate(ctx);
    expect(tenancyOf(carrier).tenant.tenantId).toBe('b');
    expect(channelOf(carrier).channel.id).toBe('web');
  });

  it('gives two tenants different instances and one tenant the same instance on every message', async () => {
    const before = TenantProbe.built;
    const seen: TenantProbe[] = [];
    for (const tenant of ['a', 'b', 'a', 'b', 'a']) {
      const { req, ctx } = http(web(tenant));
      guard.canActivate(ctx);
      seen.push(await tenancyOf(req).scope.get(TenantProbe));
    }
    expect(seen[0]).toBe(seen[2]);
    expect(seen[0]).toBe(seen[4]);
    expect(seen[1]).toBe(seen[3]);
    expect(seen[0]).not.toBe(seen[1]);
    expect(seen[0]!.tenant.tenantId).toBe('a');
    expect(seen[1]!.tenant.tenantId).toBe('b');
    // At most one build per tenant (the first spec may have built a's already).
    expect(TenantProbe.built - before).toBeLessThanOrEqual(2);
  });

  it('refuses an unknown tenant, env, team or channel with a 404 naming the part', () => {
    const cases: [Record<string, string>, string, string][] = [
      [web('nope'), 'tenant', 'nope'],
      [{ ...web('a'), env: 'prod' }, 'env', 'prod'],
      [{ ...web('a'), team: 'ops' }, 'team', 'ops'],
      [{ ...web('a'), channel: 'sms' }, 'channel', 'sms'],
    ];
    for (const [params, part, value] of cases) {
      const { req, ctx } = http(params);
      let err: unknown;
      try {
        guard.canActivate(ctx);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UnknownTenancyError);
      expect(err).toMatchObject({ part, value, httpStatus: 404, message: `unknown ${part} '${value}'` });
      expect(req.tenancy).toBeUndefined();
    }
  });

  it('refuses a request that carries no tenancy', () => {
    expect(() => guard.canActivate(http({}).ctx)).toThrow(/no tenancy in request/);
  });

  it('resolves tenant-level routes from the tenancy headers, without a channel', () => {
    const { req, ctx } = http({}, { 'x-greentic-tenant': 'b', 'x-greentic-env': 'dev' });
    guard.canActivate(ctx);
    expect(tenancyOf(req).tenant).toEqual({ tenantId: 'b', envId: 'dev' });
    expect(() => channelOf(req)).toThrow(/names no channel/);
  });

  it('refuses to build TENANT_CTX outside a tenant scope', async () => {
    await expect(app.resolve(TenantProbe)).rejects.toThrow(/outside a tenant scope/);
  });
});
