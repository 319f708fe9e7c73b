import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisRateLimitStore } from '../src/ratelimit/redis-rate-limit.store.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { RunnerProcess } from './support/runner-process.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Rate limits shared by several replicas: token buckets in the machine's Redis (one Lua script per
 * check), under a key prefix no other test uses.
 */

const prefix = uniqueRedisPrefix('ratelimit');
const perMinute = (rate: number, burst = rate) => ({ rate, perMs: 60_000, burst });

beforeAll(async () => {
  await requireRedis();
});

afterAll(async () => {
  await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
});

describe('RedisRateLimitStore', () => {
  let a: RedisRateLimitStore;
  let b: RedisRateLimitStore;

  beforeAll(async () => {
    a = await RedisRateLimitStore.connect({ url: SHARED_REDIS_URL });
    b = await RedisRateLimitStore.connect({ url: SHARED_REDIS_URL });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('lets exactly the burst through when two clients race for one bucket', async () => {
    const bucket = [{ key: `${prefix}:race`, policy: perMinute(10) }];
    const decisions = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).take(bucket)));
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    const refused = decisions.filter((d) => !d.allowed);
    expect(refused).toHaveLength(20);
    // 10 per minute: the next token is at most 6 s away.
    for (const d of refused) expect(d.retryAfterMs).toBeGreaterThan(0);
    for (const d of refused) expect(d.retryAfterMs).toBeLessThanOrEqual(6_000);
  });

  it('takes from the tenant and the channel bucket atomically', async () => {
    const tenant = { key: `${prefix}:{t}:tenant`, policy: perMinute(10) };
    const channel = { key: `${prefix}:{t}:ch`, policy: perMinute(2) };
    expect((await a.take([tenant, channel])).allowed).toBe(true);
    expect((await b.take([tenant, channel])).allowed).toBe(true);
    expect((await a.take([tenant, channel])).allowed).toBe(false);
    // The refused take left the tenant bucket at 8.
    expect(await b.take([tenant])).toMatchObject({ allowed: true, remaining: 7 });
  });

  it('lets bucket keys expire once they would be full again', async () => {
    const key = `${prefix}:expiry`;
    await a.take([{ key, policy: { rate: 10, perMs: 1_000, burst: 10 } }]);
    const r = new Redis(SHARED_REDIS_URL);
    try {
      const ttl = await r.pttl(key);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2_000);
    } finally {
      r.disconnect();
    }
  });

  it('refuses to start against a Redis that is not there', async () => {
    await expect(RedisRateLimitStore.connect({ url: 'redis://127.0.0.1:1' })).rejects.toThrow(
      /rate limits: cannot connect to Redis at redis:\/\/127\.0\.0\.1:1/,
    );
  });
});

describe('two replicas behind one limit', () => {
  let replicas: RunnerProcess[] = [];

  beforeAll(async () => {
    const bundle = writeTempBundle({
      packs: [
        { id: 'p', flows: { 'echo.ygtc': 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: ok\n' } },
      ],
      tenants: {
        acme: {
          packs: ['p'],
          channels: { web: { pack: 'p', flow: 'echo', rate_limit: { rate: 5, per: '1m' } } },
        },
      },
    });
    // Each replica its own process, as deployed: they share nothing but Redis.
    const env = {
      GREENTIC_BUNDLE: bundle,
      GREENTIC_COORDINATION: 'redis',
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: prefix,
    };
    replicas = await Promise.all([RunnerProcess.start('A', env), RunnerProcess.start('B', env)]);
  }, 180_000);

  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  });

  it('holds the limit across both: a burst of 3× the limit split over them gets exactly the limit', async () => {
    const responses = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        fetch(`${replicas[i % 2]!.url}/webhooks/webhook/acme/dev/default/web`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ userId: `u${i}`, text: 'hi', messageId: `m${i}` }),
        }).then((r) => ({ replica: i % 2, status: r.status, retryAfter: r.headers.get('retry-after') })),
      ),
    );
    expect(responses.map((r) => r.status).sort()).toEqual([...Array(5).fill(202), ...Array(10).fill(429)]);
    const limited = responses.filter((r) => r.status === 429);
    expect(new Set(limited.map((r) => r.replica))).toEqual(new Set([0, 1]));
    for (const r of limited) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
  });
});
