import { Server, type CustomTransportStrategy } from '@nestjs/microservices';
import { isObservable, lastValueFrom } from 'rxjs';
import { BusContext } from './bus.context.js';
import type { BusSubscription, MessageBus } from '../core/message-bus.js';

export interface BusTransportOptions {
  /** Queue group shared by all replicas, so each message runs once. */
  queue: string;
  maxDeliver?: number;
  /** Named route sets a handler may be consumed through (`routes` in its pattern's extras). */
  routes?: Record<string, () => BusRoute[]>;
}

/** One subscription a handler is consumed through: a pattern under a queue group. */
export interface BusRoute {
  pattern: string;
  queue: string;
}

/**
 * Per-handler options, given as the pattern decorator's extras:
 * `@EventPattern(subjectPattern('egress'), { routes: 'egress', maxDeliver: 5 })`.
 */
export interface BusHandlerOptions {
  /** Queue group of this handler (default: the transport's). */
  queue?: string;
  maxDeliver?: number;
  /**
   * A route set of the transport's options: the handler is consumed through each of its routes
   * (patterns within the handler's pattern, each under its own queue) instead of its pattern once.
   */
  routes?: string;
  /** The handler recognises work it already did: see SubscribeOptions.replaysPastLimit. */
  replaysPastLimit?: boolean;
}

/**
 * What a handler's completion is: Nest hands back an Observable only when the handler (or an
 * interceptor) made one; a plain result needs no subscription just to be awaited.
 */
function settledOf(out: unknown): Promise<void> | undefined {
  return isObservable(out)
    ? lastValueFrom(out, { defaultValue: undefined }).then(() => undefined)
    : undefined;
}

/**
 * A Nest microservice transport over the MessageBus: `@MessagePattern(subjectPattern('ingress'))` and
 * `@EventPattern(subjectPattern('egress'), …)` handlers receive bus deliveries through the same guards
 * and DI as HTTP controllers. The handler's completion acks; a thrown error asks the bus to redeliver.
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
        const extras = (handler.extras ?? {}) as BusHandlerOptions;
        for (const route of this.routesOf(pattern, extras)) {
          const sub = await this.bus.subscribe(
            route.pattern,
            // Not async: one then() on Nest's promise (an async wrapper makes more promises per
            // delivery, each a hook call when tracing is on).
            (msg) =>
              handler(
                msg.data,
                new BusContext([
                  msg.subject,
                  msg.headers,
                  msg.deliveryCount,
                  msg.fence,
                  msg.pastLimit === true,
                ]),
              ).then(settledOf),
            {
              queue: route.queue,
              maxDeliver: extras.maxDeliver ?? this.options.maxDeliver,
              ...(extras.replaysPastLimit ? { replaysPastLimit: true } : {}),
            },
          );
          this.subscriptions.push(sub);
        }
      }
      callback();
    } catch (e) {
      (callback as (err?: unknown) => void)(e);
    }
  }

  private routesOf(pattern: string, extras: BusHandlerOptions): BusRoute[] {
    if (extras.routes === undefined) return [{ pattern, queue: extras.queue ?? this.options.queue }];
    const routes = this.options.routes?.[extras.routes];
    if (!routes)
      throw new Error(
        `handler of '${pattern}' names route set '${extras.routes}', which the transport lacks`,
      );
    return routes();
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
