import { Module, type DynamicModule } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { SecretsModule } from '../secrets/secrets.module.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { HealthController } from './health.controller.js';
import { LifecycleService } from './lifecycle.service.js';

/** The application's module objects health reports on and drains (see AppModule.forRoot). */
export interface HealthModuleOptions {
  messaging: DynamicModule;
  sessions: DynamicModule;
  wasm: DynamicModule;
  packs: DynamicModule;
}

@Module({
  imports: [TerminusModule.forRoot({ errorLogStyle: 'json' }), SecretsModule, TenancyModule],
  controllers: [HealthController],
  providers: [LifecycleService],
  exports: [LifecycleService],
})
// The lifecycle hook (refusing new work while draining) is installed on Fastify by configureApp().
export class HealthModule {
  static forRoot(opts: HealthModuleOptions): DynamicModule {
    return { module: HealthModule, imports: [opts.messaging, opts.sessions, opts.wasm, opts.packs] };
  }
}
