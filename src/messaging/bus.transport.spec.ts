import { describe, expect, it } from 'vitest';
import type {
  BusHandler,
  BusSubscription,
  MessageBus,
  PublishAck,
  SubscribeOptions,
} from '../core/message-bus.js';
import { BusContext } from './bus.context.js';
import { BusTransport } from './bus.transport.js';
import { InProcessBus } from './in-process.bus.js';

/** Records what the transport subscribes. */
class RecordingBus implements MessageBus {
  readonly kind = 'recording';
  readonly subs: { pattern: string; opts?: SubscribeOptions }[] = [];
  readonly handlers: BusHandler[] = [];
  async publish(): Promise<PublishAck> {
    return { duplicate: false };
  }
  async subscribe<T>(pattern: string, h: BusHandler<T>, opts?: SubscribeOptions): Promise<BusSubscription> {
    const entry = { pattern, opts };
    this.subs.push(entry);
    this.handlers.push(h as BusHandler);
    return { unsubscribe: async () => void this.subs.splice(this.subs.indexOf(entry), 1) };
  }
  async health() {
    return { up: true, details: {} };
  }
  async close(): Promise<void> {}
}

function listen(t: BusTransport): Promise<void> {
  return new Promise((resolve, reject) =>
    t.listen(((err?: unknown) => (err ? reject(err) : resolve())) as () => void),
  );
}

describe('BusTransport', () => {
  it("subscribes each handler on the transport's queue, or on the queue and deliveries its extras name", async () => {
    const bus = new RecordingBus();
    const t = new BusTransport(bus, { queue: 'runner', maxDeliver: 7 });
    t.addHandler('a.>', async () => undefined, false);
    t.addHandler('b.>', async () => undefined, true, {
      queue: 'b-workers',
      maxDeliver: 2,
      replaysPastLimit: true,
    });
    await listen(t);
    expect(bus.subs).toEqual([
      { pattern: 'a.>', opts: { queue: 'runner', maxDeliver: 7 } },
      { pattern: 'b.>', opts: { queue: 'b-workers', maxDeliver: 2, replaysPastLimit: true } },
    ]);
    await t.close();
    expect(bus.subs).toEqual([]);
  });

  it('consumes a handler through each route of the route set its extras name', async () => {
    const bus = new RecordingBus();
    const routes = [
      { pattern: 'e.x.*', queue: 'e-x' },
      { pattern: 'e.y.*', queue: 'e-y' },
    ];
    const t = new BusTransport(bus, { queue: 'runner', routes: { split: () => routes } });
    t.addHandler('e.>', async () => undefined, true, { routes: 'split', maxDeliver: 5 });
    await listen(t);
    expect(bus.subs).toEqual([
      { pattern: 'e.x.*', opts: { queue: 'e-x', maxDeliver: 5 } },
      { pattern: 'e.y.*', opts: { queue: 'e-y', maxDeliver: 5 } },
    ]);
  });

  it('refuses to start when a handler names a route set the transport lacks', async () => {
    const t = new BusTransport(new RecordingBus(), { queue: 'runner' });
    t.addHandler('e.>', async () => undefined, true, { routes: 'missing' });
    await expect(listen(t)).rejects.toThrow(/route set 'missing'/);
  });

  it('hands the handler the payload and a context with subject, headers and delivery count; a throw redelivers', async () => {
    const bus = new InProcessBus();
    const t = new BusTransport(bus, { queue: 'runner', maxDeliver: 3 });
    const seen: [unknown, string, Record<string, string>, number][] = [];
    t.addHandler(
      'x.>',
      async (data: unknown, ctx: BusContext) => {
        seen.push([data, ctx.getSubject(), ctx.getHeaders(), ctx.getDeliveryCount()]);
        if (ctx.getDeliveryCount() === 1) throw new Error('once');
      },
      true,
    );
    await listen(t);
    await bus.publish('x.y', { n: 1 }, { headers: { h: 'v' } });
    for (let i = 0; i < 100 && seen.length < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(seen).toEqual([
      [{ n: 1 }, 'x.y', { h: 'v' }, 1],
      [{ n: 1 }, 'x.y', { h: 'v' }, 2],
    ]);
    await t.close();
    await bus.close();
  });

  it('tells the handler, through its context, that a delivery is past the limit', async () => {
    const bus = new RecordingBus();
    const t = new BusTransport(bus, { queue: 'runner', maxDeliver: 1 });
    const seen: [number, boolean][] = [];
    t.addHandler(
      'x.>',
      async (_data: unknown, ctx: BusContext) => void seen.push([ctx.getDeliveryCount(), ctx.isPastLimit()]),
      true,
      { replaysPastLimit: true },
    );
    await listen(t);
    const [deliver] = bus.handlers;
    await deliver!({ subject: 'x.y', data: {}, headers: {}, deliveryCount: 1 });
    await deliver!({ subject: 'x.y', data: {}, headers: {}, deliveryCount: 2, pastLimit: true });
    expect(seen).toEqual([
      [1, false],
      [2, true],
    ]);
  });
});
