import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { RunnerConfig } from '../config/runner-config.js';
import { FlowRouter } from '../packs/flow-router.service.js';
import { FlowsModule } from '../flows/flows.module.js';
import { EgressDispatcher } from './egress-dispatcher.service.js';
import { InProcessBus } from './in-process.bus.js';
import { IngressController } from './ingress.controller.js';
import { IngressService } from './ingress.service.js';
import { MESSAGE_BUS } from '../core/message-bus.js';
import { MessageProcessor } from './message-processor.service.js';
import { natsBusOptionsFrom } from './nats/nats-bus.options.js';
import { NatsBus } from './nats/nats.bus.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';
import { ProvidersModule } from './providers/providers.module.js';
import { WebhookProvider } from './providers/webhook/webhook.provider.js';
import { ReplyWaiter } from './reply-waiter.service.js';
import { WebhookController } from './webhook.controller.js';

@Global()
@Module({
  imports: [DiscoveryModule, ProvidersModule, FlowsModule],
  controllers: [WebhookController, IngressController],
  providers: [
    InProcessBus,
    {
      // GREENTIC_BUS=nats: JetStream (docs/production-messaging.md); otherwise the embedded bus.
      provide: MESSAGE_BUS,
      inject: [RunnerConfig, InProcessBus],
      useFactory: (cfg: RunnerConfig, memory: InProcessBus) =>
        cfg.GREENTIC_BUS === 'nats' ? NatsBus.connect(natsBusOptionsFrom(cfg)) : memory,
    },
    ProviderRegistry,
    WebhookProvider,
    IngressService,
    ReplyWaiter,
    EgressDispatcher,
    MessageProcessor,
    FlowRouter,
  ],
  exports: [MESSAGE_BUS, ProviderRegistry, IngressService, MessageProcessor],
})
export class MessagingModule {}
