import { Module } from '@nestjs/common';
import { PacksModule } from '../packs/packs.module.js';
import { SecretsModule } from '../secrets/secrets.module.js';
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
@Module({
  imports: [PacksModule, SecretsModule],
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
export class AdminModule {}
