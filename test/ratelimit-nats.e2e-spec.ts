import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { MESSAGE_BUS, type MessageBus } from '../src/core/message-bus.js';
import { type EgressMessage, type MessageEnvelope } from '../src/core/message-envelope.js';
import { ingressSubject } from '../src/core/subjects.js';
import { RateLimitService } from '../src/ratelimit/rate-limit.service.js';
import {
  deleteStreams,
  natsAppConfig,
  requireNats,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * The bus side of rate limits on the real JetStream bus (the machine's NATS, streams of this test's
 * own): ingress messages over a channel's limit are nak'ed with the limit's delay and processed
 * once tokens are back, none dead-lettered.
 */

const ns = uniqueNatsNamespace('ratelimit');
let app: INestApplication;

beforeAll(async () => {
  await requireNats();
  const bundle = writeTempBundle({
    packs: [
      {
        id: 'p',
        flows: {
          'echo.ygtc': 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n',
        },
      },
    ],
    tenants: {
      feed: {
        packs: ['p'],
        channels: { bus: { pack: 'p', flow: 'echo', rate_limit: { rate: 3, per: '1s' } } },
      },
    },
  });
  const started = await startApp({
    config: natsAppConfig(bundle, ns, { GREENTIC_COORDINATION: 'memory' }),
  });
  app = started.app;
});

afterAll(async () => {
  await app?.close();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
});

describe('rate limits on the JetStream bus', () => {
  it('redelivers messages over the limit after the limit delay, and loses none', async () => {
    const bus = app.get<MessageBus>(MESSAGE_BUS);
    expect(bus.kind).toBe('nats');
    const check = vi.spyOn(app.get(RateLimitService), 'check');
    const done = new Map<string, number>();
    const dead: unknown[] = [];
    const all = new Promise<void>((resolve) => {
      void bus.subscribe<EgressMessage>('greentic.messaging.egress.dev.feed.default.bus', async (m) => {
        done.set(m.data.inReplyTo, Date.now());
        if (done.size === 6) resolve();
      });
    });
    await bus.subscribe('greentic.messaging.dlq.dev.feed.>', async (m) => {
      dead.push(m.data);
    });
    const t0 = Date.now();
    for (let i = 0; i < 6; i++) {
      const env: MessageEnvelope = {
        id: `nats-feed-${i}`,
        tenant: 'feed',
        env: 'dev',
        team: 'default',
        channel: 'bus',
        provider: 'webhook',
        conversationId: `c${i}`,
        userId: `u${i}`,
        sessionKey: `feed:webhook:c${i}:u${i}`,
        text: `m${i}`,
        attachments: [],
        timestamp: new Date().toISOString(),
      };
      await bus.publish(ingressSubject('dev', 'feed', 'default', 'bus'), env, { msgId: env.id });
    }
    await all;
    expect(done.size).toBe(6);
    expect(dead).toEqual([]);
    const outcomes = await Promise.all(
      check.mock.results.map((r) => r.value as Promise<{ allowed: boolean }>),
    );
    expect(outcomes.filter((d) => d.allowed)).toHaveLength(6);
    const refused = outcomes.filter((d) => !d.allowed).length;
    expect(refused).toBeGreaterThanOrEqual(3);
    // Three got through at once; the others only after a redelivery delay of at least a second
    // (the limit's Retry-After, in whole seconds).
    const times = [...done.values()].map((t) => t - t0).sort((a, b) => a - b);
    expect(times[5]!).toBeGreaterThanOrEqual(1_000);
    check.mockRestore();
  });
});
