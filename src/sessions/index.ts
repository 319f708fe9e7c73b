export * from '../core/session-store.js';
export { MemorySessionStore } from './memory-session.store.js';
export { SessionsModule } from './sessions.module.js';
export * from '../core/delivery-ledger.js';
export * from '../core/provider-stash.js';
