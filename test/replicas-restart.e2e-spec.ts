import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import type { EgressMessage } from '../src/core/message-envelope.js';
import { TestNatsServer, TestRedisServer } from './support/nats-redis-servers.js';
import { countBy, replicaBundle, sleep, StreamObserver, until } from './support/replicas.js';

/**
 * NATS and Redis restarts under load. This file starts its own nats-server (JetStream, file
 * store) and redis-server (append-only, fsync always) on spare ports and kills them with
 * SIGKILL mid-load; the machine's shared servers are never touched. Two replicas (two Nest apps)
 * must reconnect, report unready then ready on /health, and give every message exactly one reply.
 */

const WEB = '/webhooks/webhook/demo/dev/default/web';
let nats: TestNatsServer;
let redis: TestRedisServer;
let apps: INestApplication[] = [];
const urls: string[] = [];
let egress: StreamObserver<EgressMessage>;

beforeAll(async () => {
  [nats, redis] = await Promise.all([TestNatsServer.start(), TestRedisServer.start()]);
  const config = {
    PORT: 0,
    LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
    GREENTIC_BUNDLE: replicaBundle(),
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: nats.url,
    REDIS_URL: redis.url,
    GREENTIC_NATS_PARTITIONS: 8,
    GREENTIC_NATS_ACK_WAIT_MS: 3_000,
    GREENTIC_NATS_BACKOFF_MS: 100,
    GREENTIC_SESSION_LEASE_MS: 2_000,
  };
  for (let i = 0; i < 2; i++) {
    const { app, url } = await startApp({ config });
    apps.push(app);
    urls.push(url);
  }
  egress = await StreamObserver.start(nats.url, 'GREENTIC_EGRESS', 'greentic.messaging.egress.>');
}, 120_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
  await egress?.stop();
  await Promise.all([nats?.stop(), redis?.stop()]);
});

/** Posts until accepted (202), alternating replicas, as a provider retries a webhook that failed. */
async function deliver(
  first: number,
  body: { userId: string; text: string; messageId: string },
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const base = urls[(first + attempt) % urls.length]!;
    const status = await fetch(`${base}${WEB}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(15_000),
    }).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 202) return;
    if (attempt > 400)
      throw new Error(`message ${body.messageId} was never accepted (last status ${status})`);
    await sleep(100);
  }
}

/** Steady load of two-turn conversations; calls `midway` once a third of the messages are accepted. */
async function runLoad(label: string, conversations: number, midway: () => Promise<void>): Promise<string[]> {
  const ids: string[] = [];
  let accepted = 0;
  let fired: Promise<void> | undefined;
  let next = 0;
  const worker = async (w: number) => {
    while (next < conversations) {
      const c = next++;
      for (const [turn, text] of [
        [1, 'hi'],
        [2, `Town${c}`],
      ] as const) {
        const messageId = `${label}${c}-t${turn}`;
        ids.push(messageId);
        await deliver(w + c, { userId: `${label}-user${c}`, text, messageId });
        accepted++;
        if (!fired && accepted >= (conversations * 2) / 3) fired = midway();
      }
    }
  };
  await Promise.all(Array.from({ length: 6 }, (_, w) => worker(w)));
  await fired;
  return ids;
}

async function healthStatus(base: string): Promise<number> {
  return fetch(`${base}/health`, { signal: AbortSignal.timeout(5_000) }).then(
    (r) => r.status,
    () => 0,
  );
}

async function expectExactlyOneReplyEach(ids: string[]): Promise<void> {
  await until(
    () => ids.every((id) => egress.messages.some((m) => m.data.inReplyTo === id)),
    'a reply to every message',
    90_000,
  );
  await sleep(2_000);
  const counts = countBy(
    egress.messages.filter((m) => ids.includes(m.data.inReplyTo)),
    (m) => m.data.inReplyTo,
  );
  const lost = ids.filter((id) => !counts.has(id));
  const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  expect({ lost, duplicated }).toEqual({ lost: [], duplicated: [] });
  for (const id of ids.filter((x) => x.endsWith('-t2'))) {
    const reply = egress.messages.find((m) => m.data.inReplyTo === id)!.data;
    expect(reply.replies[0]?.text).toMatch(/^Weather for Town\d+: /);
  }
}

describe('dependency restarts under load (private nats-server and redis-server)', () => {
  it('survives a NATS restart: unready while it is down, ready after, 0 lost, 0 duplicated', async () => {
    expect(await healthStatus(urls[0]!)).toBe(200);
    const seen: number[][] = [[], []];
    const ids = await runLoad('n', 30, async () => {
      await nats.down('SIGKILL');
      await until(
        async () => (await healthStatus(urls[0]!)) === 503 && (await healthStatus(urls[1]!)) === 503,
        'both replicas unready',
      );
      seen[0]!.push(503);
      await sleep(1_500);
      await nats.up();
      await until(
        async () => (await healthStatus(urls[0]!)) === 200 && (await healthStatus(urls[1]!)) === 200,
        'both replicas ready again',
      );
      seen[1]!.push(200);
    });
    expect(seen).toEqual([[503], [200]]);
    await expectExactlyOneReplyEach(ids);
  });

  it('survives a Redis restart: unready while it is down, ready after, 0 lost, 0 duplicated', async () => {
    expect(await healthStatus(urls[1]!)).toBe(200);
    const seen: number[][] = [[], []];
    const ids = await runLoad('r', 30, async () => {
      await redis.down('SIGKILL');
      await until(
        async () => (await healthStatus(urls[0]!)) === 503 && (await healthStatus(urls[1]!)) === 503,
        'both replicas unready',
      );
      seen[0]!.push(503);
      await sleep(1_500);
      await redis.up();
      await until(
        async () => (await healthStatus(urls[0]!)) === 200 && (await healthStatus(urls[1]!)) === 200,
        'both replicas ready again',
      );
      seen[1]!.push(200);
    });
    expect(seen).toEqual([[503], [200]]);
    await expectExactlyOneReplyEach(ids);
  });
});
