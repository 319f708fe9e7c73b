import {
  Controller,
  Get,
  Inject,
  Injectable,
  Module,
  Scope,
  UseGuards,
  type CanActivate,
  type INestApplication,
} from '@nestjs/common';
import {
  ContextIdFactory,
  DiscoveryModule,
  REQUEST,
  type ContextId,
  type ContextIdResolver,
  type ContextIdStrategy,
  type HostComponentInfo,
} from '@nestjs/core';
import { Injector } from '@nestjs/core/injector/injector.js';
import { RouterExplorer } from '@nestjs/core/router/router-explorer.js';
import { MessagePattern, Payload, Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { RpcContextCreator } from '@nestjs/microservices/context/rpc-context-creator.js';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DurableHandlerCache, installDurableHandlerCache } from './durable-handler-cache.js';

// Spied before the cache wraps them, so the spies count what Nest actually builds.
const httpBuilds = vi.spyOn(RouterExplorer.prototype as never, 'createCallbackProxy');
const rpcBuilds = vi.spyOn(RpcContextCreator.prototype, 'create');
const instanceLoads = vi.spyOn(Injector.prototype, 'loadPerContext');
// As TenancyModule.forRoot does: before the application builds its per-request handlers.
installDurableHandlerCache();
const contextIds = vi.spyOn(ContextIdFactory, 'getByRequest');

/** One durable tree per `x-tenant` header (HTTP) or `tenant` field (RPC payload). */
class ByTenant implements ContextIdStrategy {
  private readonly trees = new Map<string, ContextId>();
  private tenantOf(request: unknown): string {
    const r = request as { headers?: Record<string, string>; data?: { tenant?: string } };
    return r.headers?.['x-tenant'] ?? r.data?.tenant ?? 'none';
  }
  /** What TenantContextIdStrategy offers the cache: the tree without a context id. */
  durableTree(request: unknown): ContextId {
    const tenant = this.tenantOf(request);
    let tree = this.trees.get(tenant);
    if (!tree) this.trees.set(tenant, (tree = ContextIdFactory.create()));
    return tree;
  }
  attach(contextId: ContextId, request: unknown): ContextIdResolver {
    const tenant = this.tenantOf(request);
    const durable = this.durableTree(request);
    return {
      resolve: (info: HostComponentInfo) => (info.isTreeDurable ? durable : contextId),
      payload: { tenant },
    };
  }
}

const DURABLE = 'DURABLE_TENANT';
const PLAIN = 'PLAIN_TENANT';
const tenantOf = (p: { tenant: string }) => p.tenant;

let staticGuardCalls = 0;
@Injectable()
class StaticGuard implements CanActivate {
  canActivate(): boolean {
    staticGuardCalls++;
    return true;
  }
}

/** A guard built per request: caching its pipeline would reuse one request's guard for all. */
const perRequestGuards = new Set<object>();
@Injectable({ scope: Scope.REQUEST })
class PerRequestGuard implements CanActivate {
  constructor(@Inject(REQUEST) readonly req: unknown) {}
  canActivate(): boolean {
    perRequestGuards.add(this);
    return true;
  }
}

@Controller('durable')
@UseGuards(StaticGuard)
class DurableController {
  constructor(@Inject(DURABLE) private readonly tenant: string) {}
  @Get()
  get(): { tenant: string } {
    return { tenant: this.tenant };
  }
  @MessagePattern('durable')
  rpc(@Payload() _p: unknown): { tenant: string } {
    return { tenant: this.tenant };
  }
}

@Controller('plain')
class PlainController {
  constructor(@Inject(PLAIN) private readonly tenant: string) {}
  @Get()
  get(): { tenant: string } {
    return { tenant: this.tenant };
  }
}

@Controller('guarded')
@UseGuards(PerRequestGuard)
class GuardedController {
  constructor(@Inject(DURABLE) private readonly tenant: string) {}
  @Get()
  get(): { tenant: string } {
    return { tenant: this.tenant };
  }
}

@Module({
  imports: [DiscoveryModule],
  controllers: [DurableController, PlainController, GuardedController],
  providers: [
    { provide: DURABLE, scope: Scope.REQUEST, durable: true, inject: [REQUEST], useFactory: tenantOf },
    {
      provide: PLAIN,
      scope: Scope.REQUEST,
      inject: [REQUEST],
      useFactory: (r: { headers: Record<string, string> }) => r.headers['x-tenant'],
    },
    StaticGuard,
    DurableHandlerCache,
  ],
})
class TestModule {}

/** A transport that hands payloads straight to the handlers, as the bus transport does. */
class DirectTransport extends Server implements CustomTransportStrategy {
  listen(cb: () => void): void {
    cb();
  }
  close(): void {}
  on(): never {
    throw new Error('unused');
  }
  unwrap<T>(): T {
    throw new Error('unused');
  }
  async call(pattern: string, data: unknown): Promise<unknown> {
    const handler = this.getHandlerByPattern(pattern);
    if (!handler) throw new Error(`no handler for ${pattern}`);
    const out = await handler(data, {});
    return typeof out === 'object' && out && 'subscribe' in out
      ? new Promise((resolve) => (out as { subscribe: (f: (v: unknown) => void) => void }).subscribe(resolve))
      : out;
  }
}

let app: INestApplication;
const transport = new DirectTransport();

beforeAll(async () => {
  ContextIdFactory.apply(new ByTenant());
  const ref = await Test.createTestingModule({ imports: [TestModule] }).compile();
  app = ref.createNestApplication(new FastifyAdapter());
  app.connectMicroservice({ strategy: transport }, { inheritAppConfig: true });
  await app.startAllMicroservices();
  await app.init();
  await (app.getHttpAdapter().getInstance() as { ready(): Promise<void> }).ready();
});
afterAll(() => app.close());

async function get(path: string, tenant: string): Promise<unknown> {
  const fastify = app.getHttpAdapter().getInstance() as {
    inject(o: {
      method: string;
      url: string;
      headers: Record<string, string>;
    }): Promise<{ statusCode: number; json(): unknown }>;
  };
  const res = await fastify.inject({ method: 'GET', url: path, headers: { 'x-tenant': tenant } });
  expect(res.statusCode).toBe(200);
  return res.json();
}

const buildsOf = (spy: typeof httpBuilds | typeof rpcBuilds | typeof instanceLoads, name: string) =>
  spy.mock.calls.filter((c) => (c[0] as object).constructor.name === name).length;

describe('DurableHandlerCache', () => {
  it('builds a durable controller’s HTTP pipeline once per tenant, and still runs its guard every time', async () => {
    staticGuardCalls = 0;
    for (let i = 0; i < 5; i++) {
      expect(await get('/durable', 'a')).toEqual({ tenant: 'a' });
      expect(await get('/durable', 'b')).toEqual({ tenant: 'b' });
    }
    expect(buildsOf(httpBuilds, 'DurableController')).toBe(2);
    expect(staticGuardCalls).toBe(10);
  });

  it('builds a durable controller’s RPC pipeline once per tenant', async () => {
    for (let i = 0; i < 4; i++) {
      expect(await transport.call('durable', { tenant: 'a' })).toEqual({ tenant: 'a' });
      expect(await transport.call('durable', { tenant: 'c' })).toEqual({ tenant: 'c' });
    }
    expect(buildsOf(rpcBuilds, 'DurableController')).toBe(2);
  });

  it('leaves plain request scope alone: a new instance and pipeline per request', async () => {
    for (let i = 0; i < 3; i++) expect(await get('/plain', 'a')).toEqual({ tenant: 'a' });
    expect(buildsOf(httpBuilds, 'PlainController')).toBe(3);
  });

  it('leaves a durable controller with a per-request guard alone: each request gets its own guard', async () => {
    perRequestGuards.clear();
    for (let i = 0; i < 3; i++) expect(await get('/guarded', 'a')).toEqual({ tenant: 'a' });
    expect(perRequestGuards.size).toBe(3);
    expect(buildsOf(httpBuilds, 'GuardedController')).toBe(3);
  });

  it('looks a durable controller up through Nest once per tenant tree, HTTP and RPC alike', async () => {
    const before = buildsOf(instanceLoads, 'DurableController');
    for (let i = 0; i < 3; i++) {
      expect(await get('/durable', 'd')).toEqual({ tenant: 'd' });
      expect(await transport.call('durable', { tenant: 'd' })).toEqual({ tenant: 'd' });
      expect(await transport.call('durable', { tenant: 'e' })).toEqual({ tenant: 'e' });
    }
    // Tenant d resolved once (its RPC calls reuse the HTTP resolution), tenant e once.
    expect(buildsOf(instanceLoads, 'DurableController') - before).toBe(2);
    const plainBefore = buildsOf(instanceLoads, 'PlainController');
    for (let i = 0; i < 3; i++) expect(await get('/plain', 'd')).toEqual({ tenant: 'd' });
    expect(buildsOf(instanceLoads, 'PlainController') - plainBefore).toBe(3);
  });

  it('sends a known tenant’s messages straight to its pipeline, without a per-request context id', async () => {
    const viaNest = () =>
      contextIds.mock.calls.filter((c) => {
        const r = c[0] as { headers?: Record<string, string>; data?: { tenant?: string } };
        return r.headers?.['x-tenant'] === 'f' || r.data?.tenant === 'f';
      }).length;
    staticGuardCalls = 0;
    for (let i = 0; i < 4; i++) {
      expect(await get('/durable', 'f')).toEqual({ tenant: 'f' });
      expect(await transport.call('durable', { tenant: 'f' })).toEqual({ tenant: 'f' });
    }
    // Nest's path once per door (the first HTTP request and the first RPC message), then none;
    // the guard still ran for every request.
    expect(viaNest()).toBe(2);
    expect(staticGuardCalls).toBe(8);
    // Not shareable: every request takes Nest's path.
    perRequestGuards.clear();
    const before = contextIds.mock.calls.length;
    for (let i = 0; i < 3; i++) expect(await get('/guarded', 'f')).toEqual({ tenant: 'f' });
    expect(contextIds.mock.calls.length - before).toBe(3);
    expect(perRequestGuards.size).toBe(3);
  });
});
