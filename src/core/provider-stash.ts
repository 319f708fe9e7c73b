import type { TenantCtx } from './tenant-ctx.js';

/**
 * Small records a channel provider keeps between a send and the platform's callback that answers
 * it (e.g. a card's Submit data too long for Telegram's 64-byte `callback_data`), where every
 * replica that may receive the callback sees them: Redis with GREENTIC_SESSIONS=redis, else this
 * process. Keys are scoped by tenant, so one tenant's token never finds another's record.
 */
export interface ProviderStash {
  /** Whether records outlive this process (and are shared by every replica). */
  readonly durable: boolean;
  put(tenant: TenantCtx, key: string, value: Record<string, unknown>, ttlMs: number): Promise<void>;
  /** The record, or undefined once it expired (or was never put). */
  get(tenant: TenantCtx, key: string): Promise<Record<string, unknown> | undefined>;
}

export const PROVIDER_STASH = Symbol('PROVIDER_STASH');
