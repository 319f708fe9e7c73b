import { Global, Module } from '@nestjs/common';
import { MemorySessionStore } from './memory-session.store.js';
import { SESSION_STORE } from './session-store.js';

@Global()
@Module({
  providers: [MemorySessionStore, { provide: SESSION_STORE, useExisting: MemorySessionStore }],
  exports: [SESSION_STORE],
})
export class SessionsModule {}
