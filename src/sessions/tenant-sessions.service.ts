import { Inject, Injectable, Scope } from '@nestjs/common';
import {
  SESSION_STORE,
  type CommitOptions,
  type SessionRecord,
  type SessionStore,
} from '../core/session-store.js';
import { TENANT_CTX, type TenantCtx } from '../core/tenant-ctx.js';
import type { OwnershipFence } from '../core/partition-ownership.js';

/**
 * One tenant's sessions: the SessionStore with the tenant fixed when the instance is built
 * (durable per tenant, through TenantScopes). There is no way to name another tenant.
 */
@Injectable({ scope: Scope.REQUEST, durable: true })
export class TenantSessions {
  constructor(
    @Inject(TENANT_CTX) readonly tenant: TenantCtx,
    @Inject(SESSION_STORE) private readonly store: SessionStore,
  ) {}

  /** Whether records outlive this process (see SessionStore.durable). */
  get durable(): boolean {
    return this.store.durable;
  }

  load(key: string, fence?: OwnershipFence): Promise<SessionRecord | null> {
    return this.store.load(this.tenant, key, fence);
  }

  commit(
    record: SessionRecord,
    expectedVersion: number,
    ttlSeconds: number,
    options?: CommitOptions,
  ): Promise<number> {
    return this.store.commit(this.tenant, record, expectedVersion, ttlSeconds, options);
  }

  delete(key: string): Promise<void> {
    return this.store.delete(this.tenant, key);
  }

  runExclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.store.runExclusive(this.tenant, key, fn);
  }
}
