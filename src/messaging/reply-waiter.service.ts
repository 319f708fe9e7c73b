import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import { MESSAGE_BUS, type BusSubscription, type MessageBus } from './message-bus.js';
import type { EgressMessage } from './message-envelope.js';

interface Waiter {
  resolve: (m: EgressMessage) => void;
  timer: NodeJS.Timeout;
}

/**
 * Lets a webhook wait for the replies to its message. Every replica listens to egress (not as a
 * queue group), so the reply reaches the replica that holds the HTTP request whichever one ran it.
 */
@Injectable()
export class ReplyWaiter implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly waiters = new Map<string, Waiter>();
  private sub?: BusSubscription;

  constructor(@Inject(MESSAGE_BUS) private readonly bus: MessageBus) {}

  async onApplicationBootstrap(): Promise<void> {
    this.sub = await this.bus.subscribe<EgressMessage>('greentic.messaging.egress.>', async (msg) => {
      const w = this.waiters.get(msg.data.inReplyTo);
      if (!w) return;
      clearTimeout(w.timer);
      this.waiters.delete(msg.data.inReplyTo);
      w.resolve(msg.data);
    });
  }

  /** Register before publishing, so a fast reply cannot slip past. */
  expect(messageId: string, timeoutMs: number): Promise<EgressMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(messageId);
        reject(
          new GreenticError(
            'reply_timeout',
            `no reply within ${timeoutMs} ms; it will still be delivered through egress`,
            504,
            {
              messageId,
            },
          ),
        );
      }, timeoutMs);
      this.waiters.set(messageId, { resolve, timer });
    });
  }

  cancel(messageId: string): void {
    const w = this.waiters.get(messageId);
    if (w) clearTimeout(w.timer);
    this.waiters.delete(messageId);
  }

  get pending(): number {
    return this.waiters.size;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.sub?.unsubscribe();
    for (const w of this.waiters.values()) clearTimeout(w.timer);
    this.waiters.clear();
  }
}
