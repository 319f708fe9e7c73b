import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { DELIVERY_MARK_TTL_MS, type DeliveryLedger, type DeliveryMark } from '../../core/delivery-ledger.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import { asStoreError, SessionStoreUnavailableError } from './redis-errors.js';
import { RedisProviderStash } from './redis-provider-stash.js';

/** HSETNX with the found value: one round trip, atomic, and the TTL set only by the writer. */
const CLAIM_LUA = `
local found = redis.call('HGET', KEYS[1], ARGV[1])
if found then return found end
redis.call('HSET', KEYS[1], ARGV[1], 'sending')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return false`;

/** Only a `sending` mark is forgotten: a `sent` one written meanwhile stays. */
const RELEASE_LUA = `
if redis.call('HGET', KEYS[1], ARGV[1]) == 'sending' then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1`;

interface Scripted {
  gtClaimPart(key: string, part: string, ttlMs: number): Promise<string | null>;
  gtReleasePart(key: string, part: string): Promise<number>;
}

export interface RedisDeliveryLedgerOptions {
  url: string;
  /** The session store's prefix: every key starts with `{prefix}:{tenant}/{env}/{team}:delivery:`. */
  prefix: string;
  commandTimeoutMs?: number;
}

/**
 * Delivery marks in Redis, shared by every replica: one hash per egress message (part index →
 * `sending` | `sent`), expiring an hour after its first write. A Redis outage fails the delivery
 * with a retryable error, so the bus retries it in place rather than sending unrecorded.
 */
export class RedisDeliveryLedger implements DeliveryLedger, OnApplicationShutdown {
  readonly durable = true;
  private readonly logger = new Logger(RedisDeliveryLedger.name);
  private closed = false;

  private constructor(
    private readonly prefix: string,
    private readonly redis: Redis & Scripted,
  ) {
    let down = false;
    redis.on('error', (e: Error) => {
      if (!down)
        this.logger.warn({ err: e.message }, 'Redis connection error (delivery ledger); reconnecting');
      down = true;
    });
    redis.on('ready', () => {
      down = false;
    });
  }

  static async connect(options: RedisDeliveryLedgerOptions): Promise<RedisDeliveryLedger> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      connectionName: 'greentic-runner-delivery',
      maxRetriesPerRequest: 2,
      commandTimeout: options.commandTimeoutMs ?? 3_000,
      retryStrategy: (times) => Math.min(50 * times, 1_000),
      connectTimeout: 3_000,
      enableAutoPipelining: true,
    });
    let cause: Error | undefined;
    const early = (e: Error): void => {
      cause = e;
    };
    redis.on('error', early);
    try {
      await redis.connect();
    } catch (e) {
      redis.disconnect();
      throw new SessionStoreUnavailableError(
        `delivery ledger: cannot connect to Redis: ${(cause ?? (e as Error)).message}`,
      );
    }
    redis.off('error', early);
    redis.defineCommand('gtClaimPart', { numberOfKeys: 1, lua: CLAIM_LUA });
    redis.defineCommand('gtReleasePart', { numberOfKeys: 1, lua: RELEASE_LUA });
    return new RedisDeliveryLedger(options.prefix, redis as Redis & Scripted);
  }

  /** Providers' records (PROVIDER_STASH), on this connection: both are egress state. */
  stash(): RedisProviderStash {
    return new RedisProviderStash(this.redis, this.prefix);
  }

  private key(tenant: TenantCtx, key: string): string {
    return `${this.prefix}:${tenantKey(tenant)}:delivery:${key}`;
  }

  async marks(tenant: TenantCtx, key: string): Promise<Map<number, DeliveryMark>> {
    const all = await this.call(() => this.redis.hgetall(this.key(tenant, key)));
    const out = new Map<number, DeliveryMark>();
    for (const [part, mark] of Object.entries(all))
      if (mark === 'sending' || mark === 'sent') out.set(Number(part), mark);
    return out;
  }

  async claim(tenant: TenantCtx, key: string, part: number): Promise<DeliveryMark | undefined> {
    const found = await this.call(() =>
      this.redis.gtClaimPart(this.key(tenant, key), String(part), DELIVERY_MARK_TTL_MS),
    );
    return found === 'sending' || found === 'sent' ? found : undefined;
  }

  async markSent(tenant: TenantCtx, key: string, part: number): Promise<void> {
    const k = this.key(tenant, key);
    await this.call(async () => {
      const r = await this.redis
        .multi()
        .hset(k, String(part), 'sent')
        .pexpire(k, DELIVERY_MARK_TTL_MS)
        .exec();
      const failed = r?.find(([err]) => err);
      if (failed?.[0]) throw failed[0];
    });
  }

  async release(tenant: TenantCtx, key: string, part: number): Promise<void> {
    await this.call(() => this.redis.gtReleasePart(this.key(tenant, key), String(part)));
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.race([this.redis.quit().catch(() => undefined), new Promise((r) => setTimeout(r, 2_000))]);
    this.redis.disconnect();
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SessionStoreUnavailableError('delivery ledger is closed');
    try {
      return await op();
    } catch (e) {
      throw asStoreError(e);
    }
  }
}
