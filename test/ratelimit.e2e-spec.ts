import 'reflect-metadata';
import path from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { MESSAGE_BUS, type MessageBus } from '../src/core/message-bus.js';
import { type EgressMessage, type MessageEnvelope } from '../src/core/message-envelope.js';
import { ingressSubject } from '../src/core/subjects.js';
import { RateLimitService } from '../src/ratelimit/rate-limit.service.js';
import { assembleWatFile } from '../src/wasm/component-builder.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Rate limits and retry policy from the bundle, one replica, buckets in memory (the embedded
 * default). Limits are per minute so that no refill happens while a burst is in flight: the counts
 * are exact, whatever the machine's speed.
 */

const ECHO = `id: echo
type: messaging
nodes:
  say:
    reply: "echo {{message.text}}"
`;
const FLAKY = `id: flaky
type: messaging
nodes:
  call:
    component.exec: { component: flaky, operation: execute }
    routing: [{ to: say }]
  say:
    reply: "succeeded on attempt {{call.payload}}"
`;

let app: INestApplication;
let base: string;

function post(tenant: string, channel: string, body: unknown, wait = false) {
  return fetch(`${base}/webhooks/webhook/${tenant}/dev/default/${channel}${wait ? '?wait=true' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

beforeAll(async () => {
  const bundle = writeTempBundle({
    packs: [
      {
        id: 'p',
        flows: { 'echo.ygtc': ECHO, 'flaky.ygtc': FLAKY },
        components: {
          flaky: await assembleWatFile(path.resolve('test/fixtures/flows-components/flaky.wat')),
        },
      },
    ],
    tenants: {
      burst: {
        packs: ['p'],
        channels: {
          web: { pack: 'p', flow: 'echo', rate_limit: { rate: 5, per: '1m' } },
          open: { pack: 'p', flow: 'echo' },
        },
      },
      shared: {
        packs: ['p'],
        rate_limit: { rate: 4, per: '1m' },
        channels: { a: { pack: 'p', flow: 'echo' }, b: { pack: 'p', flow: 'echo' } },
      },
      feed: {
        packs: ['p'],
        channels: { bus: { pack: 'p', flow: 'echo', rate_limit: { rate: 3, per: '1s' } } },
      },
      retrying: {
        packs: ['p'],
        retry: { max_attempts: 3, backoff_ms: 5 },
        channels: { tenant_policy: { pack: 'p', flow: 'flaky' } },
      },
      // Its own tenant: component instances (and the flaky count) are per tenant.
      strict: {
        packs: ['p'],
        retry: { max_attempts: 3, backoff_ms: 5 },
        channels: { own_policy: { pack: 'p', flow: 'flaky', retry: { max_attempts: 1 } } },
      },
    },
  });
  const started = await startApp({
    config: { PORT: 0, GREENTIC_BUNDLE: bundle, LOG_LEVEL: 'silent', GREENTIC_COORDINATION: 'memory' },
  });
  app = started.app;
  base = started.url;
});

afterAll(async () => {
  await app?.close();
});

describe('rate limits on webhooks', () => {
  it('accepts exactly the limit of a burst of 3× the limit and answers the rest 429 with Retry-After', async () => {
    const responses = await Promise.all(
      Array.from({ length: 15 }, (_, i) =>
        post('burst', 'web', { userId: `u${i}`, text: 'hi', messageId: `b${i}` }),
      ),
    );
    const accepted = responses.filter((r) => r.status === 202);
    const limited = responses.filter((r) => r.status === 429);
    expect(accepted).toHaveLength(5);
    expect(limited).toHaveLength(10);
    for (const r of limited) {
      const after = Number(r.headers.get('retry-after'));
      // 5 per minute: one token every 12 s.
      expect(Number.isInteger(after)).toBe(true);
      expect(after).toBeGreaterThanOrEqual(1);
      expect(after).toBeLessThanOrEqual(12);
      const body = (await r.json()) as {
        error: { code: string; retryAfter: number; tenant: string; channel: string };
      };
      expect(body.error).toMatchObject({
        code: 'rate_limited',
        retryAfter: after,
        tenant: 'burst',
        channel: 'web',
      });
    }
    // The limit is the channel's: another channel of the tenant is not affected.
    expect((await post('burst', 'open', { userId: 'x', text: 'hi' })).status).toBe(202);
  });

  it("holds a tenant's limit across its channels", async () => {
    const responses = await Promise.all([
      ...Array.from({ length: 3 }, (_, i) => post('shared', 'a', { userId: `a${i}`, text: 'hi' })),
      ...Array.from({ length: 3 }, (_, i) => post('shared', 'b', { userId: `b${i}`, text: 'hi' })),
    ]);
    expect(responses.filter((r) => r.status === 202)).toHaveLength(4);
    expect(responses.filter((r) => r.status === 429)).toHaveLength(2);
  });
});

describe('rate limits on the bus', () => {
  it('redelivers messages over the limit later instead of refusing them', async () => {
    const bus = app.get<MessageBus>(MESSAGE_BUS);
    const limits = app.get(RateLimitService);
    const check = vi.spyOn(limits, 'check');
    const done = new Set<string>();
    const dead: unknown[] = [];
    const all = new Promise<void>((resolve) => {
      void bus.subscribe<EgressMessage>('greentic.messaging.egress.dev.feed.default.bus', async (m) => {
        done.add(m.data.inReplyTo);
        if (done.size === 6) resolve();
      });
    });
    await bus.subscribe('greentic.messaging.dlq.dev.feed.>', async (m) => {
      dead.push(m.data);
    });
    // A platform that publishes straight to the bus: six messages at once, three allowed per second.
    for (let i = 0; i < 6; i++) {
      const env: MessageEnvelope = {
        id: `feed-${i}`,
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
    expect([...done].sort()).toEqual(['feed-0', 'feed-1', 'feed-2', 'feed-3', 'feed-4', 'feed-5']);
    expect(dead).toEqual([]);
    const outcomes = await Promise.all(
      check.mock.results.map((r) => r.value as Promise<{ allowed: boolean }>),
    );
    expect(outcomes.filter((d) => d.allowed)).toHaveLength(6);
    // The three over the limit were each refused at least once, then delivered.
    expect(outcomes.filter((d) => !d.allowed).length).toBeGreaterThanOrEqual(3);
    check.mockRestore();
  });
});

describe('retry policy from the bundle', () => {
  it("retries component nodes with the tenant's policy, and a channel's own policy wins", async () => {
    const ok = await post('retrying', 'tenant_policy', { userId: 'u1', text: 'go' }, true);
    const body = (await ok.json()) as { status: string; replies: { text: string }[] };
    expect(body.status).toBe('completed');
    expect(body.replies.map((r) => r.text)).toEqual(['succeeded on attempt 3']);
    const once = await post('strict', 'own_policy', { userId: 'u2', text: 'go' }, true);
    const failed = (await once.json()) as { status: string; error?: { code: string } };
    expect(failed.status).toBe('failed');
    expect(failed.error?.code).toBe('component_failed');
  });
});
