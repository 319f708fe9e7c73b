import type { LoggerService } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import type { DeliveryLedger } from '../core/delivery-ledger.js';
import type { EgressMessage, OutboundReply } from '../core/message-envelope.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { MemoryDeliveryLedger } from '../sessions/memory-delivery-ledger.js';
import type { DeliveryMode } from '../tenancy/bundle.types.js';
import { EgressError } from './providers/messaging-provider.js';
import { deliveryKey, partKey, ReplyDelivery } from './reply-delivery.js';

const tenant: TenantCtx = Object.freeze({ tenantId: 't', envId: 'dev', teamId: 'default' });

const egress = (replies: OutboundReply[], sessionKey = 'k'): EgressMessage => ({
  id: 'm1:reply',
  inReplyTo: 'm1',
  tenant: 't',
  env: 'dev',
  team: 'default',
  channel: 'c',
  provider: 'x',
  conversationId: 'conv',
  userId: 'u',
  sessionKey,
  replies,
  status: 'completed',
  timestamp: new Date().toISOString(),
});

class RecordingLogger implements LoggerService {
  readonly warnings: { fields: Record<string, unknown>; msg: string }[] = [];
  log(): void {}
  error(): void {}
  warn(fields: Record<string, unknown>, msg: string): void {
    this.warnings.push({ fields, msg });
  }
}

/** One attempt of the bus: a fresh ReplyDelivery per delivery, as the dispatcher builds them. */
function attempt(
  msg: EgressMessage,
  mode: DeliveryMode,
  ledger: DeliveryLedger,
  deliveryCount: number,
  logger = new RecordingLogger(),
): ReplyDelivery {
  return new ReplyDelivery(msg, tenant, mode, ledger, deliveryCount, logger);
}

describe('deliveryKey', () => {
  it('is header-safe, stable per message and distinct per session and channel', () => {
    const a = egress([]);
    const key = deliveryKey(a);
    expect(key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(deliveryKey({ ...a })).toBe(key);
    expect(deliveryKey({ ...a, sessionKey: 'other\nline' })).not.toBe(key);
    expect(deliveryKey({ ...a, channel: 'c2' })).not.toBe(key);
  });
});

describe('ReplyDelivery, at_least_once', () => {
  it('records progress per reply: a redelivery re-sends only the replies not recorded sent', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'one' }, { text: 'two' }, { text: 'three' }]);
    const sent: [string, string][] = [];
    let failOnce = true;
    const send = async (r: OutboundReply, _i: number, key: string) => {
      if (r.text === 'two' && failOnce) {
        failOnce = false;
        throw new EgressError('x', 'answered 503', true, undefined, 503);
      }
      sent.push([r.text!, key]);
    };
    await expect(attempt(msg, 'at_least_once', ledger, 1).replies(send)).rejects.toThrow('503');
    await attempt(msg, 'at_least_once', ledger, 2).replies(send);
    // A third delivery (the bus repeating an ack that got lost) sends nothing.
    await attempt(msg, 'at_least_once', ledger, 3).replies(send);
    const key = deliveryKey(msg);
    expect(sent).toEqual([
      ['one', `${key}.0`],
      ['two', `${key}.1`],
      ['three', `${key}.2`],
    ]);
  });

  it('repeats, with the same idempotency key, a reply whose record was lost before a redelivery', async () => {
    const memory = new MemoryDeliveryLedger();
    let down = true;
    // The record is lost between the service's answer and the redelivery (Redis down, or the
    // replica killed before it wrote it): markSent never lands.
    const ledger: DeliveryLedger = Object.assign(Object.create(memory) as DeliveryLedger, {
      markSent: async (t: TenantCtx, k: string, part: number) => {
        if (down) throw new Error('Redis unavailable');
        return memory.markSent(t, k, part);
      },
    });
    const msg = egress([{ text: 'only' }]);
    const keys: string[] = [];
    // One reply sent per call still gets a per-reply key, like the second reply of a message would.
    const send = async (_r: OutboundReply, _i: number, key: string) => void keys.push(key);
    const logger = new RecordingLogger();
    // Sent: the delivery succeeds (a failure would have the bus retry it into a second send now),
    // and the lost record is logged with the key.
    await attempt(msg, 'at_least_once', ledger, 1, logger).replies(send);
    expect(logger.warnings).toEqual([
      expect.objectContaining({
        fields: expect.objectContaining({
          idempotencyKey: `${deliveryKey(msg)}.0`,
          err: 'Redis unavailable',
        }),
      }),
    ]);
    down = false;
    await attempt(msg, 'at_least_once', ledger, 2).replies(send);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
    expect(keys[0]).toBe(`${deliveryKey(msg)}.0`);
  });

  it('keeps progress per session: two users who reused a message id both get their replies', async () => {
    const ledger = new MemoryDeliveryLedger();
    const sent: string[] = [];
    const alice = egress([{ text: 'for alice' }]);
    const bob = { ...egress([{ text: 'for bob' }], 'k2'), userId: 'bob' };
    const push = async (r: OutboundReply) => void sent.push(r.text!);
    await attempt(alice, 'at_least_once', ledger, 1).replies(push);
    await attempt(bob, 'at_least_once', ledger, 1).replies(push);
    await attempt(alice, 'at_least_once', ledger, 2).replies(push);
    expect(sent).toEqual(['for alice', 'for bob']);
  });

  it('gives a one-call delivery the message key itself (the webhook callback header)', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'a' }, { text: 'b' }]);
    const keys: string[] = [];
    await attempt(msg, 'at_least_once', ledger, 1).whole(async (key) => void keys.push(key));
    await attempt(msg, 'at_least_once', ledger, 2).whole(async (key) => void keys.push(key));
    expect(keys).toEqual([deliveryKey(msg)]);
    expect(partKey('k')).toBe('k');
    expect(partKey('k', 0)).toBe('k.0');
  });
});

describe('ReplyDelivery, at_most_once', () => {
  it('records "sending" before the call and "sent" after it', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'one' }]);
    const seen: (string | undefined)[] = [];
    await attempt(msg, 'at_most_once', ledger, 1).replies(async () => {
      seen.push((await ledger.marks(tenant, deliveryKey(msg))).get(0));
    });
    expect(seen).toEqual(['sending']);
    expect((await ledger.marks(tenant, deliveryKey(msg))).get(0)).toBe('sent');
  });

  it('drops and logs a reply found "sending" (its sender died mid-call), and sends the rest once', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'one' }, { text: 'two' }]);
    const sent: string[] = [];
    // The first attempt dies inside the call for reply 0: no answer, no record beyond `sending`.
    await expect(
      attempt(msg, 'at_most_once', ledger, 1).replies(async () => {
        throw new Error('socket hang up');
      }),
    ).rejects.toThrow('hang up');
    const logger = new RecordingLogger();
    await attempt(msg, 'at_most_once', ledger, 2, logger).replies(async (r) => void sent.push(r.text!));
    await attempt(msg, 'at_most_once', ledger, 3, logger).replies(async (r) => void sent.push(r.text!));
    expect(sent).toEqual(['two']);
    const dropped = logger.warnings.filter((w) => w.msg.startsWith('reply dropped'));
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    expect(dropped[0]!.fields).toMatchObject({
      tenant: 't',
      channel: 'c',
      messageId: 'm1',
      reply: 0,
      idempotencyKey: `${deliveryKey(msg)}.0`,
      delivery: 'at_most_once',
    });
  });

  it('never sends a part twice when two replicas hold the same message at once', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'one' }]);
    let calls = 0;
    const send = async () => {
      calls++;
      await new Promise((r) => setTimeout(r, 20));
    };
    await Promise.all([
      attempt(msg, 'at_most_once', ledger, 1).replies(send),
      attempt(msg, 'at_most_once', ledger, 2).replies(send),
    ]);
    expect(calls).toBe(1);
  });

  it('retries a part the service refused with a status: nothing reached it', async () => {
    const ledger = new MemoryDeliveryLedger();
    const msg = egress([{ text: 'one' }]);
    let calls = 0;
    const send = async () => {
      if (++calls === 1) throw new EgressError('x', 'answered 429', true, 1000, 429);
    };
    await expect(attempt(msg, 'at_most_once', ledger, 1).replies(send)).rejects.toThrow('429');
    await attempt(msg, 'at_most_once', ledger, 2).replies(send);
    expect(calls).toBe(2);
    expect((await ledger.marks(tenant, deliveryKey(msg))).get(0)).toBe('sent');
  });
});
