import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { PacksModule } from '../packs/packs.module.js';
import { SecretsModule } from '../secrets/secrets.module.js';
import { HealthController } from './health.controller.js';
import { LifecycleService } from './lifecycle.service.js';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), PacksModule, SecretsModule],
  controllers: [HealthController],
  providers: [LifecycleService],
  exports: [LifecycleService],
})
// The lifecycle hook (refusing new work while draining) is installed on Fastify by configureApp().
export class HealthModule {}
