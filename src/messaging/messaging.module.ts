import { Global, Module, type DynamicModule } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MetricService } from 'nestjs-otel';
import { decorated } from '../common/decorated-provider.js';
import { RunnerConfig } from '../config/runner-config.js';
import { FlowRouter } from '../packs/flow-router.service.js';
import { PacksModule } from '../packs/packs.module.js';
import { RateLimitModule } from '../ratelimit/ratelimit.module.js';
import { FlowsModule } from '../flows/flows.module.js';
import { EgressDispatcher } from './egress-dispatcher.service.js';
import { EgressController } from './egress.controller.js';
import { InProcessBus } from './in-process.bus.js';
import { IngressController } from './ingress.controller.js';
import { IngressService } from './ingress.service.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { countingHandlers, InflightWork } from './inflight-work.js';
import { MessageProcessor } from './message-processor.service.js';
import { natsBusOptionsFrom } from './nats/nats-bus.options.js';
import { NatsBus } from './nats/nats.bus.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';
import { ProvidersModule } from './providers/providers.module.js';
import { WebhookProvider } from './providers/webhook/webhook.provider.js';
import { ReplyWaiter } from './reply-waiter.service.js';
import { WebhookController } from './webhook.controller.js';

export type MessageBusDecorator = (bus: MessageBus) => MessageBus;

export interface MessagingModuleOptions {
  /** The flows module the message path runs (e.g. `FlowsModule.forRoot({ decorate })`); FlowsModule by default. */
  flows?: DynamicModule;
  /** Wraps the bus where it is provided (the application passes telemetry's instrumentation). */
  decorateBus?: MessageBusDecorator;
}

const DECORATE_BUS = Symbol('MessagingModule.decorateBus');

@Global()
@Module({
  imports: [DiscoveryModule, ProvidersModule, PacksModule, RateLimitModule],
  controllers: [WebhookController, IngressController, EgressController],
  providers: [
    InProcessBus,
    // nestjs-otel's instruments for the processor's own metrics (stateless; one per name process-wide).
    MetricService,
    InflightWork,
    {
      // GREENTIC_BUS=nats: JetStream (docs/production-messaging.md); otherwise the embedded bus.
      // Its deliveries count as in flight (graceful shutdown), and the application may decorate it.
      provide: MESSAGE_BUS,
      inject: [RunnerConfig, InProcessBus, InflightWork, { token: DECORATE_BUS, optional: true }],
      useFactory: async (
        cfg: RunnerConfig,
        memory: InProcessBus,
        inflight: InflightWork,
        decorate?: MessageBusDecorator,
      ): Promise<MessageBus> => {
        const bus: MessageBus =
          cfg.GREENTIC_BUS === 'nats' ? await NatsBus.connect(natsBusOptionsFrom(cfg)) : memory;
        return decorated(bus, (b) => {
          const counted = countingHandlers(b, inflight);
          return decorate ? decorate(counted) : counted;
        });
      },
    },
    ProviderRegistry,
    WebhookProvider,
    IngressService,
    ReplyWaiter,
    EgressDispatcher,
    MessageProcessor,
    FlowRouter,
  ],
  exports: [MESSAGE_BUS, InflightWork, ProviderRegistry, IngressService, MessageProcessor],
})
export class MessagingModule {
  static forRoot(opts: MessagingModuleOptions = {}): DynamicModule {
    return {
      module: MessagingModule,
      imports: [opts.flows ?? FlowsModule],
      providers: opts.decorateBus ? [{ provide: DECORATE_BUS, useValue: opts.decorateBus }] : [],
    };
  }
}
