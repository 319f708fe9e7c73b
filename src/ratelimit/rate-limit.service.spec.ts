import { describe, expect, it } from 'vitest';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import type { ChannelBinding, TenantBinding } from '../tenancy/bundle.types.js';
import { MemoryRateLimitStore } from './memory-rate-limit.store.js';
import { CoordinationUnavailableError, RateLimitedError } from './rate-limit.errors.js';
import { RateLimitService } from './rate-limit.service.js';
import type { RateLimitStore } from './rate-limiter.js';

function resolved(
  over: { tenant?: Partial<TenantBinding>; channel?: Partial<ChannelBinding> } = {},
): ResolvedChannel {
  const channel: ChannelBinding = {
    id: 'web',
    provider: 'webhook',
    pack: 'p',
    flow: 'f',
    sessionTtlSeconds: 60,
    settings: {},
    secrets: [],
    secretRefs: {},
    ...over.channel,
  };
  const tenantBinding = {
    id: 'acme',
    envs: new Map(),
    packs: [],
    secrets: { backend: 'env', options: {} },
    limits: { componentDeadlineMs: 1, componentMemoryMb: 1, flowStepLimit: 1, maxBodyBytes: 1 },
    ...over.tenant,
  } as TenantBinding;
  return { tenant: { tenantId: 'acme', envId: 'dev', teamId: 'default' }, tenantBinding, channel };
}

const limit = (rate: number) => ({ rate, perMs: 60_000, burst: rate });

describe('RateLimitService', () => {
  it('builds one bucket per configured level, scoped, with the tenant as hash tag', () => {
    const svc = new RateLimitService(new MemoryRateLimitStore());
    const r = resolved({ tenant: { rateLimit: limit(10) }, channel: { rateLimit: limit(2) } });
    expect(svc.buckets(r, 'http').map((b) => b.key)).toEqual([
      'greentic:rl:{acme}:http:tenant',
      'greentic:rl:{acme}:http:ch:dev/default/web',
    ]);
    expect(svc.buckets(resolved(), 'bus')).toEqual([]);
    expect(svc.buckets(resolved({ channel: { provider: 'timer', rateLimit: limit(1) } }), 'bus')).toEqual([]);
  });

  it('throws RateLimitedError with 429, retryAfter seconds and the exact wait', async () => {
    const svc = new RateLimitService(new MemoryRateLimitStore(() => 0));
    const r = resolved({ channel: { rateLimit: limit(1) } });
    await svc.enforce(r, 'http');
    const err = await svc.enforce(r, 'http').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    const e = err as RateLimitedError;
    expect(e.httpStatus).toBe(429);
    expect(e.details).toMatchObject({
      retryAfter: 60,
      retryAfterMs: 60_000,
      retryable: true,
      tenant: 'acme',
      channel: 'web',
    });
    // The bus scope has its own bucket.
    await expect(svc.enforce(r, 'bus')).resolves.toBeUndefined();
  });

  it('lets messages through when the store is unavailable', async () => {
    const down: RateLimitStore = {
      kind: 'down',
      take: () => Promise.reject(new CoordinationUnavailableError('redis down')),
      close: async () => undefined,
    };
    const svc = new RateLimitService(down);
    await expect(
      svc.enforce(resolved({ channel: { rateLimit: limit(1) } }), 'http'),
    ).resolves.toBeUndefined();
  });
});
