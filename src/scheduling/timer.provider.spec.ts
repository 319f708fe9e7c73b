import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeChannel } from '../../test/support/fakes/channel-context.js';
import type { EgressMessage } from '../core/message-envelope.js';
import { EgressError } from '../messaging/providers/messaging-provider.js';
import { ReplyDelivery } from '../messaging/reply-delivery.js';
import { MemoryDeliveryLedger } from '../sessions/memory-delivery-ledger.js';
import { TimerProvider } from './timer.provider.js';

/** A receiver of timer callbacks: answers each with the next scripted status (200 when none). */
let server: Server;
let url: string;
const received: { key: string | undefined; body: Record<string, unknown> }[] = [];
const statuses: number[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      received.push({ key: req.headers['idempotency-key'] as string | undefined, body: JSON.parse(body) });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/tick`;
});

afterAll(() => new Promise((r) => server.close(r)));

const tick = (id: string): EgressMessage => ({
  id: `${id}:reply`,
  inReplyTo: id,
  tenant: 'acme',
  env: 'dev',
  team: 'default',
  channel: 'nightly',
  provider: 'timer',
  conversationId: 'nightly',
  userId: 'timer',
  sessionKey: 'acme:timer:nightly',
  replies: [{ text: 'report sent' }],
  status: 'completed',
  timestamp: new Date().toISOString(),
});

describe('TimerProvider', () => {
  const provider = new TimerProvider();
  const channel = fakeChannel('timer', {}, 'acme', 'nightly');
  const ledger = new MemoryDeliveryLedger();
  const logger = new Logger('test');
  const withUrl = fakeChannel('timer', {}, 'acme', 'nightly');
  const delivery = (msg: EgressMessage, deliveryCount: number) =>
    new ReplyDelivery(msg, withUrl.tenant, 'at_least_once', ledger, deliveryCount, logger);

  beforeAll(() => {
    withUrl.channel.settings['callback_url'] = url;
  });

  it('posts the tick once: a redelivery of a callback recorded sent is not posted again', async () => {
    const msg = tick('timer:nightly:2026-12-05T02:00:00.000Z');
    await provider.send(msg, withUrl, delivery(msg, 1));
    await provider.send(msg, withUrl, delivery(msg, 2));
    const mine = received.filter((r) => r.body['tick'] === msg.inReplyTo);
    expect(mine).toEqual([
      {
        key: msg.id,
        body: {
          timer: 'nightly',
          tick: msg.inReplyTo,
          status: 'completed',
          replies: [{ text: 'report sent' }],
        },
      },
    ]);
  });

  it('fails a 5xx with a retryable error and posts again on the redelivery, with the same key', async () => {
    const msg = tick('timer:nightly:2026-12-06T02:00:00.000Z');
    statuses.push(503);
    const err = await provider.send(msg, withUrl, delivery(msg, 1)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EgressError);
    expect(err).toMatchObject({ retryable: true });
    await provider.send(msg, withUrl, delivery(msg, 2));
    const keys = received.filter((r) => r.body['tick'] === msg.inReplyTo).map((r) => r.key);
    expect(keys).toEqual([msg.id, msg.id]);
  });

  it('logs the run when the timer has no callback_url, and posts nothing', async () => {
    const before = received.length;
    const msg = tick('timer:nightly:2026-12-07T02:00:00.000Z');
    await provider.send(msg, channel, delivery(msg, 1));
    expect(received.length).toBe(before);
  });
});
