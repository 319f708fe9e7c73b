import { Module, RequestMethod, type MiddlewareConsumer, type NestModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
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
    // Every route: webhooks and the other ingress doors (Direct Line...) are refused while
    // draining; probes, metrics and admin stay open (the middleware lets them through).
    consumer.apply(LifecycleMiddleware).forRoutes({ path: '{*splat}', method: RequestMethod.ALL });
  }
}
