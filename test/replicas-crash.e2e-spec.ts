import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressMessage } from '../src/core/message-envelope.js';
import {
  deleteRedisPrefix,
  deleteStreams,
  requireNats,
  requireRedis,
  SHARED_NATS_URL,
  SHARED_REDIS_URL,
  uniqueNatsNamespace,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { Redis } from 'ioredis';
import { countBy, natsBusHealth, replicaBundle, StreamObserver, until } from './support/replicas.js';
import { RunnerProcess } from './support/runner-process.js';

/**
 * Two replica processes (the TypeScript runner, default durable tenancy) on the machine's NATS
 * and Redis. Under a steady load of distinct two-turn conversations, one replica is killed with
 * SIGKILL; every message must still get exactly one reply on the egress stream.
 */

const ns = uniqueNatsNamespace('crash');
const redisPrefix = uniqueRedisPrefix('crash');
const SP = ns.GREENTIC_NATS_SUBJECT_PREFIX;
const WEB = '/webhooks/webhook/demo/dev/default/web';
const CONVERSATIONS = 40;
const CONCURRENCY = 8;

let replicas: RunnerProcess[] = [];
let egress: StreamObserver<EgressMessage>;

function env(): Record<string, string | number> {
  return {
    GREENTIC_BUNDLE: replicaBundle(),
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: SHARED_NATS_URL,
    REDIS_URL: SHARED_REDIS_URL,
    ...ns,
    GREENTIC_REDIS_PREFIX: redisPrefix,
    GREENTIC_NATS_PARTITIONS: 8,
    GREENTIC_NATS_ACK_WAIT_MS: 2_000,
    GREENTIC_NATS_BACKOFF_MS: 100,
    GREENTIC_SESSION_LEASE_MS: 2_000,
  };
}

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  const e = env();
  replicas = await Promise.all([RunnerProcess.start('A', e), RunnerProcess.start('B', e)]);
  egress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`,
    `${SP}.greentic.messaging.egress.>`,
  );
  // Both replicas own partitions of every group before the load: on a fast machine the kill could
  // otherwise come before the replica started second took its share, and move nothing.
  await until(
    async () => {
      const owned = (await Promise.all(replicas.map((r) => natsBusHealth(r.url)))).map((h) => h.owned);
      const groups = new Set(owned.flatMap((o) => Object.keys(o)));
      return groups.size > 0 && owned.every((o) => [...groups].every((g) => (o[g]?.length ?? 0) > 0));
    },
    'both replicas owning partitions of every group',
    30_000,
  );
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  await egress?.stop();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix);
});

/**
 * Posts one message, as a provider would: to one replica, and when it does not answer 2xx
 * (killed mid-request), again with the same message id to the other.
 */
async function deliver(
  first: number,
  body: { userId: string; text: string; messageId: string },
): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const target = replicas[(first + attempt) % replicas.length]!;
    const ok = await fetch(`${target.url}${WEB}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).then(
      (r) => r.status === 202,
      () => false,
    );
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`message ${body.messageId} was never accepted`);
}

/** Waits (briefly) until the replica reports a message inside the flow processor (`/metrics`). */
async function untilProcessing(r: RunnerProcess): Promise<void> {
  for (let i = 0; i < 400; i++) {
    const text = await fetch(`${r.url}/metrics`).then(
      (res) => res.text(),
      () => '',
    );
    const n = Number(/^greentic_inflight_messages(?:\{[^}]*\})? (\d+)/m.exec(text)?.[1] ?? 0);
    if (n > 0) return;
    await new Promise((res) => setTimeout(res, 2));
  }
}

/** Partition claims so far, all groups: each claim takes a new epoch (src/core/partition-ownership.ts). */
async function claims(): Promise<number> {
  const r = new Redis(SHARED_REDIS_URL);
  try {
    const keys = await r.keys(`${redisPrefix}:owners:*:epoch`);
    const epochs = await Promise.all(keys.map((k) => r.get(k)));
    return epochs.reduce((n, e) => n + Number(e), 0);
  } finally {
    r.disconnect();
  }
}

describe('kill -9 of a replica under load', () => {
  it('gives every message exactly one reply: 0 lost, 0 duplicated', async () => {
    const ids: string[] = [];
    let accepted = 0;
    let killed = false;
    let claimsBeforeKill = 0;
    let next = 0;
    const worker = async (w: number) => {
      while (next < CONVERSATIONS) {
        const c = next++;
        const user = `user${c}`;
        for (const [turn, text] of [
          [1, 'hi'],
          [2, `City${c}`],
        ] as const) {
          const messageId = `c${c}-t${turn}`;
          ids.push(messageId);
          await deliver(w + c, { userId: user, text, messageId });
          accepted++;
          if (!killed && accepted >= (CONVERSATIONS * 2) / 3) {
            killed = true;
            // Mid-flow, not between messages: a fast replica can be idle at any given moment.
            await untilProcessing(replicas[0]!);
            // The surviving replica takes the dead one's pending and in-flight messages.
            claimsBeforeKill = await claims();
            await replicas[0]!.kill('SIGKILL');
            replicas = [replicas[1]!];
          }
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    expect(killed).toBe(true);
    expect(ids).toHaveLength(CONVERSATIONS * 2);

    await until(
      () => ids.every((id) => egress.messages.some((m) => m.data.inReplyTo === id)),
      'a reply to every message',
      60_000,
    );
    // Let late redeliveries land, if any were going to.
    await new Promise((r) => setTimeout(r, 3_000));
    const counts = countBy(egress.messages, (m) => m.data.inReplyTo);
    const lost = ids.filter((id) => !counts.has(id));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    expect({ lost, duplicated }).toEqual({ lost: [], duplicated: [] });
    expect(counts.size).toBe(ids.length);
    // Every conversation finished correctly: turn 2 found the session turn 1 parked, wherever each ran.
    for (let c = 0; c < CONVERSATIONS; c++) {
      const reply = egress.messages.find((m) => m.data.inReplyTo === `c${c}-t2`)!.data;
      expect(reply.replies[0]?.text, JSON.stringify(reply.error)).toMatch(
        new RegExp(`^Weather for City${c}: `),
      );
    }
    // The kill moved partitions: the survivor claimed the dead replica's, each under a new epoch.
    expect(await claims()).toBeGreaterThan(claimsBeforeKill);
  });
});
