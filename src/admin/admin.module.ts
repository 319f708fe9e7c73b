import { Module, type DynamicModule } from '@nestjs/common';
import { SecretsModule } from '../secrets/secrets.module.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { AdminGuard } from './admin.guard.js';
import { DeadLetterStore } from './dead-letter.store.js';
import { DeadLettersAdminController } from './dead-letters-admin.controller.js';
import { FlowGraphAdminController } from './flow-graph-admin.controller.js';
import { FlowsAdminController } from './flows-admin.controller.js';
import { PacksAdminController } from './packs-admin.controller.js';
import { SessionsAdminController } from './sessions-admin.controller.js';
import { TenantsAdminController } from './tenants-admin.controller.js';

/**
 * Operator routes under `/admin`, each controller behind AdminGuard. Other admin controllers
 * (flows, sessions) join this module's `controllers`.
 */
export interface AdminModuleOptions {
  /** The application's module objects (see AppModule.forRoot): dead letters, sessions, packs. */
  messaging: DynamicModule;
  sessions: DynamicModule;
  packs: DynamicModule;
}

@Module({
  imports: [SecretsModule, TenancyModule],
  controllers: [
    PacksAdminController,
    TenantsAdminController,
    FlowsAdminController,
    SessionsAdminController,
    DeadLettersAdminController,
    FlowGraphAdminController,
  ],
  providers: [AdminGuard, DeadLetterStore],
  exports: [AdminGuard],
})
export class AdminModule {
  static forRoot(opts: AdminModuleOptions): DynamicModule {
    return { module: AdminModule, imports: [opts.messaging, opts.sessions, opts.packs] };
  }
}
