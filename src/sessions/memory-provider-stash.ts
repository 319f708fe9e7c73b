import { Injectable } from '@nestjs/common';
import { ExpiringMap } from '../common/expiring-map.js';
import type { ProviderStash } from '../core/provider-stash.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';

/** Records kept at most (past that the oldest are forgotten first). */
const MAX_RECORDS = 10_000;
/** The longest TTL kept here; a put asks for its own, up to this. */
const MAX_TTL_MS = 7 * 24 * 3_600_000;

/**
 * Provider records in this process (GREENTIC_SESSIONS=memory): enough for one replica; with
 * several, a callback may reach another one, so records must live in Redis.
 */
@Injectable()
export class MemoryProviderStash implements ProviderStash {
  readonly durable = false;
  private readonly records = new ExpiringMap<string, { value: Record<string, unknown>; until: number }>(
    MAX_RECORDS,
    MAX_TTL_MS,
  );

  async put(tenant: TenantCtx, key: string, value: Record<string, unknown>, ttlMs: number): Promise<void> {
    this.records.set(`${tenantKey(tenant)}|${key}`, { value, until: Date.now() + ttlMs });
  }

  async get(tenant: TenantCtx, key: string): Promise<Record<string, unknown> | undefined> {
    const found = this.records.get(`${tenantKey(tenant)}|${key}`);
    return found && found.until > Date.now() ? found.value : undefined;
  }
}
