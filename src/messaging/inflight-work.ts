import { Injectable, type OnModuleInit } from '@nestjs/common';
import { MetricService } from 'nestjs-otel';
import type { BusHandler, MessageBus, SubscribeOptions } from '../core/message-bus.js';

/** Counts of work in progress, for graceful shutdown and `/metrics`. */
@Injectable()
export class InflightWork implements OnModuleInit {
  /** Inbound messages between the bus handing them over and their replies being published. */
  processing = 0;
  /** Bus handlers running (ingress, egress delivery, reply waiters). */
  busHandlers = 0;

  onModuleInit(): void {
    new MetricService()
      .getObservableGauge('greentic_inflight_messages', {
        description: 'Inbound messages being processed now',
      })
      .addCallback((r) => r.observe(this.processing));
  }

  get total(): number {
    return this.processing + this.busHandlers;
  }

  /**
   * Runs `fn` counted as `kind` while it runs. Hands back `fn`'s own promise: an async wrapper
   * would add promises per message, each paying the context manager's hook when tracing is on.
   */
  track<T>(kind: 'processing' | 'busHandlers', fn: () => Promise<T>): Promise<T> {
    this[kind]++;
    let run: Promise<T>;
    try {
      run = fn();
    } catch (e) {
      this[kind]--;
      return Promise.reject(e as Error);
    }
    const done = (): void => {
      this[kind]--;
    };
    void run.then(done, done);
    return run;
  }
}

/**
 * The bus whose deliveries count as in flight while their handler runs, whoever subscribed (the
 * ingress transport, the egress dispatcher, reply waiters): what a drain waits for.
 */
export function countingHandlers(bus: MessageBus, inflight: InflightWork): MessageBus {
  return {
    kind: bus.kind,
    publish: (subject, data, opts) => bus.publish(subject, data, opts),
    subscribe: <T>(pattern: string, handler: BusHandler<T>, opts?: SubscribeOptions) =>
      bus.subscribe<T>(pattern, (msg) => inflight.track('busHandlers', () => handler(msg)), opts),
    health: () => bus.health(),
    close: () => bus.close(),
  };
}
