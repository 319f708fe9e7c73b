import type { Redis } from 'ioredis';
import type { ProviderStash } from '../../core/provider-stash.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import { asStoreError } from './redis-errors.js';

/**
 * Provider records in Redis, shared by every replica: `{prefix}:{tenant}/{env}/{team}:stash:{key}`,
 * JSON with its own TTL. It rides on the delivery ledger's connection (RedisDeliveryLedger.stash),
 * which owns its lifecycle. A Redis outage fails the call with a retryable error: the send or the
 * webhook is retried rather than answered without its record.
 */
export class RedisProviderStash implements ProviderStash {
  readonly durable = true;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(tenant: TenantCtx, key: string): string {
    return `${this.prefix}:${tenantKey(tenant)}:stash:${key}`;
  }

  async put(tenant: TenantCtx, key: string, value: Record<string, unknown>, ttlMs: number): Promise<void> {
    try {
      await this.redis.set(this.key(tenant, key), JSON.stringify(value), 'PX', Math.max(1, Math.ceil(ttlMs)));
    } catch (e) {
      throw asStoreError(e);
    }
  }

  async get(tenant: TenantCtx, key: string): Promise<Record<string, unknown> | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.key(tenant, key));
    } catch (e) {
      throw asStoreError(e);
    }
    if (raw === null) return undefined;
    const value = JSON.parse(raw) as unknown;
    return value && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  }
}
