import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller.js';
import { LifecycleService } from './lifecycle.service.js';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' })],
  controllers: [HealthController],
  providers: [LifecycleService],
  exports: [LifecycleService],
})
// The lifecycle hook (refusing new work while draining) is installed on Fastify by configureApp().
export class HealthModule {}
