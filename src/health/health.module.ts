import { Module, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { WebhookController } from '../messaging/webhook.controller.js';
import { HealthController } from './health.controller.js';
import { LifecycleMiddleware } from './lifecycle.middleware.js';
import { LifecycleService } from './lifecycle.service.js';

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' })],
  controllers: [HealthController],
  providers: [LifecycleService],
  exports: [LifecycleService],
})
export class HealthModule implements NestModule {
  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(LifecycleMiddleware).forRoutes(WebhookController);
  }
}
