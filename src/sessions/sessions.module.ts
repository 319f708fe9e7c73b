import { Global, Module } from '@nestjs/common';
import { RunnerConfig } from '../config/runner-config.js';
import { MemorySessionStore } from './memory-session.store.js';
import { RedisSessionStore } from './redis/redis-session.store.js';
import { SESSION_STORE } from '../core/session-store.js';
import { DELIVERY_LEDGER } from '../core/delivery-ledger.js';
import { MemoryDeliveryLedger } from './memory-delivery-ledger.js';
import { RedisDeliveryLedger } from './redis/redis-delivery-ledger.js';

@Global()
@Module({
  providers: [
    MemorySessionStore,
    {
      // GREENTIC_SESSIONS=redis: shared by every replica (docs/production-messaging.md); otherwise in memory.
      provide: SESSION_STORE,
      inject: [RunnerConfig, MemorySessionStore],
      useFactory: (cfg: RunnerConfig, memory: MemorySessionStore) =>
        cfg.GREENTIC_SESSIONS === 'redis'
          ? RedisSessionStore.connect({
              url: cfg.REDIS_URL,
              prefix: cfg.GREENTIC_REDIS_PREFIX,
              leaseMs: cfg.GREENTIC_SESSION_LEASE_MS,
            })
          : memory,
    },
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
  ],
  exports: [SESSION_STORE, DELIVERY_LEDGER],
})
export class SessionsModule {}
