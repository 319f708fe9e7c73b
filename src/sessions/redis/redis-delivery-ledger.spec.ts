import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from '../../../test/support/nats-redis-servers.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';
import { WHOLE_MESSAGE } from '../../core/delivery-ledger.js';
import { RedisDeliveryLedger } from './redis-delivery-ledger.js';

/** On the machine's Redis, under a prefix no other test uses: the marks every replica shares. */
const prefix = uniqueRedisPrefix('delivery-ledger');
const acme: TenantCtx = Object.freeze({ tenantId: 'acme', envId: 'dev', teamId: 'default' });
const globex: TenantCtx = Object.freeze({ tenantId: 'globex', envId: 'dev', teamId: 'default' });
let a: RedisDeliveryLedger;
let b: RedisDeliveryLedger;

beforeAll(async () => {
  await requireRedis();
  // Two connections: two replicas.
  a = await RedisDeliveryLedger.connect({ url: SHARED_REDIS_URL, prefix });
  b = await RedisDeliveryLedger.connect({ url: SHARED_REDIS_URL, prefix });
});

afterAll(async () => {
  await a?.onApplicationShutdown();
  await b?.onApplicationShutdown();
  await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
});

describe('RedisDeliveryLedger', () => {
  it('records marks per part, seen by another replica', async () => {
    expect(await a.claim(acme, 'm1', 0)).toBeUndefined();
    await a.markSent(acme, 'm1', 0);
    expect(await a.claim(acme, 'm1', 1)).toBeUndefined();
    expect(await b.marks(acme, 'm1')).toEqual(
      new Map([
        [0, 'sent'],
        [1, 'sending'],
      ]),
    );
    // Another tenant's message of the same key is another message.
    expect(await b.marks(globex, 'm1')).toEqual(new Map());
    // The whole message's mark (a redelivery finished it) beside its parts'.
    await a.markSent(acme, 'm1', WHOLE_MESSAGE);
    expect((await b.marks(acme, 'm1')).get(WHOLE_MESSAGE)).toBe('sent');
  });

  it('hands a part to exactly one of two replicas claiming it at once', async () => {
    const results = await Promise.all([
      ...Array.from({ length: 10 }, () => a.claim(acme, 'race', 0)),
      ...Array.from({ length: 10 }, () => b.claim(acme, 'race', 0)),
    ]);
    expect(results.filter((r) => r === undefined)).toHaveLength(1);
    expect(results.filter((r) => r === 'sending')).toHaveLength(19);
  });

  it('releases only a sending mark, and expires marks within the hour', async () => {
    await a.claim(acme, 'm2', 0);
    await a.release(acme, 'm2', 0);
    expect(await b.claim(acme, 'm2', 0)).toBeUndefined();
    await b.markSent(acme, 'm2', 0);
    await a.release(acme, 'm2', 0);
    expect((await a.marks(acme, 'm2')).get(0)).toBe('sent');
    const r = new Redis(SHARED_REDIS_URL);
    try {
      const keys = await r.keys(`${prefix}:*m2`);
      expect(keys).toHaveLength(1);
      const ttl = await r.pttl(keys[0]!);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(3_600_000);
    } finally {
      r.disconnect();
    }
  });
});

describe('RedisProviderStash (on the ledger connection)', () => {
  it('holds a record put by one replica for another, per tenant, until its TTL', async () => {
    await a.stash().put(acme, 'telegram/tg/1/tok', { action: 'escalate', note: 'n'.repeat(200) }, 60_000);
    expect(await b.stash().get(acme, 'telegram/tg/1/tok')).toEqual({
      action: 'escalate',
      note: 'n'.repeat(200),
    });
    expect(await b.stash().get(globex, 'telegram/tg/1/tok')).toBeUndefined();
    expect(b.stash().durable).toBe(true);

    await a.stash().put(acme, 'brief', { n: 1 }, 50);
    await new Promise((r) => setTimeout(r, 150));
    expect(await b.stash().get(acme, 'brief')).toBeUndefined();
  });
});
