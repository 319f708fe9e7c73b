import { Module, type DynamicModule } from '@nestjs/common';
import { decorated } from '../common/decorated-provider.js';
import { FlowExecutorService } from './flow-executor.service.js';
import { FLOW_RUNNER, type FlowRunner } from './flow-run.types.js';

export type FlowRunnerDecorator = (runner: FlowRunner) => FlowRunner;

export interface FlowsModuleOptions {
  /** Wraps the flow runner where it is provided (the application passes telemetry's instrumentation). */
  decorate?: FlowRunnerDecorator;
}

const DECORATE_RUNNER = Symbol('FlowsModule.decorate');

/**
 * Flow execution: FlowExecutorService, and FLOW_RUNNER, the seam the message path calls (the
 * executor, decorated when the application asks). Components are reached through the tenant's
 * TenantComponents given with each run, so the module needs no runtime of its own.
 */
@Module({
  providers: [
    FlowExecutorService,
    {
      provide: FLOW_RUNNER,
      inject: [FlowExecutorService, { token: DECORATE_RUNNER, optional: true }],
      useFactory: (executor: FlowExecutorService, decorate?: FlowRunnerDecorator): FlowRunner =>
        decorated<FlowRunner>(executor, decorate),
    },
  ],
  exports: [FlowExecutorService, FLOW_RUNNER],
})
export class FlowsModule {
  /** The module with its FLOW_RUNNER wrapped by `decorate`. */
  static forRoot(opts: FlowsModuleOptions = {}): DynamicModule {
    return {
      module: FlowsModule,
      providers: opts.decorate ? [{ provide: DECORATE_RUNNER, useValue: opts.decorate }] : [],
    };
  }
}
