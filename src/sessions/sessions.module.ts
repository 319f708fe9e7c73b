import { Global, Module } from '@nestjs/common';
import { RunnerConfig } from '../config/runner-config.js';
import { MemorySessionStore } from './memory-session.store.js';
import { RedisSessionStore } from './redis/redis-session.store.js';
import { SESSION_STORE } from '../core/session-store.js';

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
  ],
  exports: [SESSION_STORE],
})
export class SessionsModule {}
