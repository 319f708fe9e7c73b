import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { MetricService } from 'nestjs-otel';
import { decorated } from '../common/decorated-provider.js';
import { RunnerConfig } from '../config/runner-config.js';
import { FlowRouter } from '../packs/flow-router.service.js';
import { RateLimitModule } from '../ratelimit/ratelimit.module.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { EgressDispatcher } from './egress-dispatcher.service.js';
import { EgressController } from './egress.controller.js';
import { InProcessBus } from './in-process.bus.js';
import { IngressController } from './ingress.controller.js';
import { IngressService } from './ingress.service.js';
import { MESSAGE_BUS, type MessageBus } from '../core/message-bus.js';
import { PARTITION_LEASES, type PartitionLeaseStore } from '../core/partition-ownership.js';
import { countingHandlers, InflightWork } from './inflight-work.js';
import { MessageProcessor } from './message-processor.service.js';
import { natsBusOptionsFrom } from './nats/nats-bus.options.js';
import { NatsBus } from './nats/nats.bus.js';
import { ProviderRegistry } from './providers/provider-registry.service.js';
import { WebhookProvider } from './providers/webhook/webhook.provider.js';
import { ReplyWaiter } from './reply-waiter.service.js';
import { WebhookController } from './webhook.controller.js';

export type MessageBusDecorator = (bus: MessageBus) => MessageBus;

/**
 * The modules the message path uses, each the one object the application built (a dynamic module is
 * one instance per object, so passing the same object shares its providers).
 */
export interface MessagingModuleOptions {
  /** `SessionsModule.forRoot(...)`: TenantSessions and the delivery ledger. */
  sessions: DynamicModule;
  /** `WasmModule.forRoot(...)`: TenantComponents. */
  wasm: DynamicModule;
  /** `PacksModule.forRoot(...)`: PackRegistry, which FlowRouter reads. */
  packs: DynamicModule;
  /** The flows module the message path runs (e.g. `FlowsModule.forRoot({ decorate })`). */
  flows: DynamicModule | Type;
  /** Wraps the bus where it is provided (the application passes telemetry's instrumentation). */
  decorateBus?: MessageBusDecorator;
}

const DECORATE_BUS = Symbol('MessagingModule.decorateBus');

/**
 * The bus, ingress, the message processor and egress. Channel providers (ProvidersModule, custom
 * modules) sit beside it and import it for IngressService; ProviderRegistry finds them by discovery.
 */
@Module({
  imports: [DiscoveryModule, TenancyModule, RateLimitModule],
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
      inject: [
        RunnerConfig,
        InProcessBus,
        InflightWork,
        PARTITION_LEASES,
        { token: DECORATE_BUS, optional: true },
      ],
      useFactory: async (
        cfg: RunnerConfig,
        memory: InProcessBus,
        inflight: InflightWork,
        leases: PartitionLeaseStore,
        decorate?: MessageBusDecorator,
      ): Promise<MessageBus> => {
        const bus: MessageBus =
          cfg.GREENTIC_BUS === 'nats' ? await NatsBus.connect(natsBusOptionsFrom(cfg), leases) : memory;
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
  static forRoot(opts: MessagingModuleOptions): DynamicModule {
    return {
      module: MessagingModule,
      imports: [opts.sessions, opts.wasm, opts.packs, opts.flows],
      providers: opts.decorateBus ? [{ provide: DECORATE_BUS, useValue: opts.decorateBus }] : [],
    };
  }
}
