import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { BusContext } from './bus.context.js';
import type { BusSubscription, MessageBus } from '../core/message-bus.js';

export interface BusTransportOptions {
  /** Queue group shared by all replicas, so each message runs once. */
  queue: string;
  maxDeliver?: number;
}

/**
 * A Nest microservice transport over the MessageBus: `@MessagePattern('greentic.messaging.ingress.>')`
 * handlers receive bus deliveries through the same guards and DI (durable TenantCtx) as HTTP
 * controllers. The handler's completion acks; a thrown error asks the bus to redeliver.
 */
export class BusTransport extends Server implements CustomTransportStrategy {
  private readonly subscriptions: BusSubscription[] = [];

  constructor(
    private readonly bus: MessageBus,
    private readonly options: BusTransportOptions,
  ) {
    super();
  }

  async listen(callback: () => void): Promise<void> {
    try {
      for (const [pattern, handler] of this.messageHandlers) {
        const sub = await this.bus.subscribe(
          pattern,
          async (msg) => {
            const ctx = new BusContext([msg.subject, msg.headers, msg.deliveryCount, msg.traceContext]);
            const out: unknown = await handler(msg.data, ctx);
            // Nest hands back an Observable only when the handler (or an interceptor) made one:
            // a plain result needs no subscription just to be awaited.
            if (isObservable(out)) await lastValueFrom(out, { defaultValue: undefined });
          },
          { queue: this.options.queue, maxDeliver: this.options.maxDeliver },
        );
        this.subscriptions.push(sub);
      }
      callback();
    } catch (e) {
      (callback as (err?: unknown) => void)(e);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.subscriptions.splice(0).map((s) => s.unsubscribe()));
  }

  on(): void {
    throw new Error('BusTransport has no events to listen to');
  }

  unwrap<T>(): T {
    return this.bus as T;
  }
}
