import { Module, type DynamicModule } from '@nestjs/common';
import { decorated } from '../common/decorated-provider.js';
import { RunnerConfig } from '../config/runner-config.js';
import { MemorySessionStore } from './memory-session.store.js';
import { RedisSessionStore } from './redis/redis-session.store.js';
import { SESSION_STORE, type SessionStore } from '../core/session-store.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { TenantSessions } from './tenant-sessions.service.js';
import { DELIVERY_LEDGER } from '../core/delivery-ledger.js';
import { MemoryDeliveryLedger } from './memory-delivery-ledger.js';
import { RedisDeliveryLedger } from './redis/redis-delivery-ledger.js';
import { MemoryProviderStash } from './memory-provider-stash.js';
import { PROVIDER_STASH, type ProviderStash } from '../core/provider-stash.js';
import type { DeliveryLedger } from '../core/delivery-ledger.js';
import { MemoryPartitionLeases } from './memory-partition-leases.js';
import { PARTITION_LEASES, type PartitionLeaseStore } from '../core/partition-ownership.js';

export type SessionStoreDecorator = (store: SessionStore) => SessionStore;

export interface SessionsModuleOptions {
  /** Wraps the store where it is provided (the application passes telemetry's instrumentation). */
  decorate?: SessionStoreDecorator;
}

const DECORATE_STORE = Symbol('SessionsModule.decorate');
/** The undecorated store (the leases share its connection). */
const STORE = Symbol('SessionsModule.store');

/**
 * The session store, the delivery ledger and providers' stash, and the tenant-bound TenantSessions. The application
 * builds `SessionsModule.forRoot(...)` once and hands that object to every module that imports it
 * (Nest identifies a dynamic module by reference, so they share one store).
 */
@Module({
  imports: [TenancyModule],
  providers: [
    MemorySessionStore,
    {
      // GREENTIC_SESSIONS=redis: shared by every replica (docs/production-messaging.md); otherwise in memory.
      provide: STORE,
      inject: [RunnerConfig, MemorySessionStore],
      useFactory: async (cfg: RunnerConfig, memory: MemorySessionStore): Promise<SessionStore> =>
        cfg.GREENTIC_SESSIONS === 'redis'
          ? await RedisSessionStore.connect({
              url: cfg.REDIS_URL,
              prefix: cfg.GREENTIC_REDIS_PREFIX,
              leaseMs: cfg.GREENTIC_SESSION_LEASE_MS,
            })
          : memory,
    },
    {
      // The store as the application sees it: possibly wrapped (telemetry), lifecycle hooks kept.
      provide: SESSION_STORE,
      inject: [STORE, { token: DECORATE_STORE, optional: true }],
      useFactory: (store: SessionStore, decorate?: SessionStoreDecorator) => decorated(store, decorate),
    },
    MemoryPartitionLeases,
    {
      // Partition leases live where sessions do: a commit checks its partition's lease atomically.
      provide: PARTITION_LEASES,
      inject: [STORE, MemoryPartitionLeases],
      useFactory: (store: SessionStore, memory: MemoryPartitionLeases): PartitionLeaseStore =>
        store instanceof RedisSessionStore ? store.leases() : memory,
    },
    TenantSessions,
    MemoryDeliveryLedger,
    {
      // Delivery marks live beside the sessions: shared by every replica when sessions are.
      provide: DELIVERY_LEDGER,
      inject: [RunnerConfig, MemoryDeliveryLedger],
      useFactory: (cfg: RunnerConfig, memory: MemoryDeliveryLedger) =>
        cfg.GREENTIC_SESSIONS === 'redis'
          ? RedisDeliveryLedger.connect({ url: cfg.REDIS_URL, prefix: cfg.GREENTIC_REDIS_PREFIX })
          : memory,
    },
    MemoryProviderStash,
    {
      // Providers' records (a card's stashed Submit data) beside the delivery marks, on their connection.
      provide: PROVIDER_STASH,
      inject: [DELIVERY_LEDGER, MemoryProviderStash],
      useFactory: (ledger: DeliveryLedger, memory: MemoryProviderStash): ProviderStash =>
        ledger instanceof RedisDeliveryLedger ? ledger.stash() : memory,
    },
  ],
  exports: [SESSION_STORE, DELIVERY_LEDGER, PARTITION_LEASES, PROVIDER_STASH, TenantSessions],
})
export class SessionsModule {
  /** The module with its SESSION_STORE wrapped by `decorate`. */
  static forRoot(opts: SessionsModuleOptions = {}): DynamicModule {
    return {
      module: SessionsModule,
      providers: opts.decorate ? [{ provide: DECORATE_STORE, useValue: opts.decorate }] : [],
    };
  }
}
