import { Module } from '@nestjs/common';
import { AdminGuard } from './admin.guard.js';
import { PacksAdminController } from './packs-admin.controller.js';

/**
 * Operator routes under `/admin`, each controller behind AdminGuard. Other admin controllers
 * (flows, sessions) join this module's `controllers`.
 */
@Module({
  controllers: [PacksAdminController],
  providers: [AdminGuard],
  exports: [AdminGuard],
})
export class AdminModule {}
