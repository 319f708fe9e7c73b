import { jetstreamManager, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressMessage, MessageEnvelope } from '../src/core/message-envelope.js';
import { fairShare } from '../src/core/partition-ownership.js';
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
import { countBy, replicaBundle, sleep, StreamObserver, until } from './support/replicas.js';
import { RunnerProcess } from './support/runner-process.js';

/**
 * Partition owners ack with AckAll, one ack per partition per flush interval (issue #20): what a
 * kill -9 of the owner leaves is its ack floor, and the next owner replays exactly the stream's
 * messages above it, finished ones included; the session's processed ids keep those from being
 * answered twice. Two replica processes on the machine's NATS and Redis, one partition (so one
 * owner, and one floor to read).
 */

const ns = uniqueNatsNamespace('ackfloor');
const redisPrefix = uniqueRedisPrefix('ackfloor');
const SP = ns.GREENTIC_NATS_SUBJECT_PREFIX;
const WEB = '/webhooks/webhook/demo/dev/default/web';
const LEASE_MS = 2_000;
/** Long enough that the second batch finishes, unacked, between two flushes. */
const ACK_INTERVAL_MS = 5_000;
const IDS = ['floor-1', 'floor-2'];
const INGRESS_GROUP = /^greentic-runner_/;

let replicas: RunnerProcess[] = [];
let egress: StreamObserver<EgressMessage>;
let ingress: StreamObserver<MessageEnvelope>;
let nc: NatsConnection;
let jsm: JetStreamManager;

function env(id: string): Record<string, string | number> {
  return {
    GREENTIC_BUNDLE: replicaBundle(),
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: SHARED_NATS_URL,
    REDIS_URL: SHARED_REDIS_URL,
    ...ns,
    GREENTIC_REDIS_PREFIX: redisPrefix,
    GREENTIC_NATS_PARTITIONS: 1,
    GREENTIC_PARTITION_LEASE_MS: LEASE_MS,
    GREENTIC_REPLICA_ID: id,
    GREENTIC_NATS_ACK_WAIT_MS: 5_000,
    GREENTIC_NATS_ACK_INTERVAL_MS: ACK_INTERVAL_MS,
  };
}

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  replicas = await Promise.all(IDS.map((id) => RunnerProcess.start(id, env(id))));
  egress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`,
    `${SP}.greentic.messaging.egress.>`,
  );
  ingress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`,
    `${SP}.greentic.messaging.ingress.>`,
  );
  nc = await connect({ servers: SHARED_NATS_URL });
  jsm = await jetstreamManager(nc);
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  await Promise.all([egress?.stop(), ingress?.stop()]);
  await nc?.close();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix);
});

/** The ingress partition's owner and its consumer, from the replicas' /health (loopback: details). */
async function owner(
  live: RunnerProcess[],
): Promise<{ replica: RunnerProcess; consumer: string } | undefined> {
  for (const r of live) {
    const owned = findOwned(await (await fetch(`${r.url}/health`)).json());
    for (const [group, parts] of Object.entries(owned ?? {}))
      if (INGRESS_GROUP.test(group) && parts[0])
        return { replica: r, consumer: `${group}_p0_e${parts[0].epoch}` };
  }
  return undefined;
}

/** The NATS bus entry's `owned` (group → partitions and epochs), wherever /health nests it. */
function findOwned(v: unknown): Record<string, { epoch: number }[]> | undefined {
  if (!v || typeof v !== 'object') return undefined;
  const o = v as Record<string, unknown>;
  if (o['kind'] === 'nats' && typeof o['owned'] === 'object')
    return o['owned'] as Record<string, { epoch: number }[]>;
  for (const child of Object.values(o)) {
    const f = findOwned(child);
    if (f) return f;
  }
  return undefined;
}

const epochOf = (consumer: string) => Number(/_e(\d+)$/.exec(consumer)![1]);

function info(consumer: string): Promise<ConsumerInfo> {
  return jsm.consumers.info(`${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`, consumer);
}

async function send(to: RunnerProcess, users: string[], turn: number, text: (u: string) => string) {
  for (const u of users) {
    const res = await fetch(`${to.url}${WEB}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: u, text: text(u), messageId: `${u}-t${turn}` }),
    });
    expect(res.status).toBe(202);
  }
}

const answered = (ids: string[]) => () =>
  ids.every((id) => egress.messages.some((m) => m.data.inReplyTo === id));

describe('AckAll ack floor across a kill -9 of the partition owner', () => {
  it('leaves finished messages above the floor unacked until the flush; the next owner replays exactly those, answering none twice', async () => {
    // Owned by the replica whose rendezvous share it is: before that, the one that started first
    // may hold it and hand it over mid-test.
    const settled = async () => {
      const o = await owner(replicas);
      return o && fairShare(IDS, o.replica.name, 1).includes(0) ? o : undefined;
    };
    await until(
      async () => (await settled()) !== undefined,
      'the ingress partition owned by its fair owner',
      20_000,
    );
    const first = (await settled())!;
    const survivor = replicas.find((r) => r !== first.replica)!;
    const users = Array.from({ length: 30 }, (_, i) => `u${i}`);
    const [early, late] = [users.slice(0, 10), users.slice(10)];

    // Ten answered and acked by a flush (one ack for all ten).
    await send(survivor, early, 1, () => 'hi');
    await until(answered(early.map((u) => `${u}-t1`)), 'the first ten answered');
    await until(
      async () => (await info(first.consumer)).ack_floor.stream_seq === 10,
      'the flush acking the first ten',
      ACK_INTERVAL_MS * 2,
    );
    // Twenty more answered right after: finished, not yet acked (the next flush is seconds away).
    await send(survivor, late, 1, () => 'hi');
    await until(answered(late.map((u) => `${u}-t1`)), 'the other twenty answered');
    await first.replica.kill('SIGKILL');
    const atKill = await info(first.consumer);
    expect(atKill.ack_floor.stream_seq).toBe(10);
    expect(atKill.delivered.stream_seq).toBe(30);
    expect(atKill.num_ack_pending).toBe(20);

    // The survivor claims the partition at the floor and replays the twenty, then acks them.
    replicas = [survivor];
    await until(
      async () => epochOf((await owner(replicas))?.consumer ?? '_e0') > epochOf(first.consumer),
      'the survivor owning the partition under a new epoch',
      LEASE_MS * 5,
    );
    const next = (await owner(replicas))!;
    await until(
      async () => (await info(next.consumer)).ack_floor.stream_seq === 30,
      'the survivor acking the replayed tail',
      ACK_INTERVAL_MS * 3,
    );
    const replayed = await info(next.consumer);
    expect(replayed.delivered.consumer_seq).toBe(20);
    expect(replayed.num_redelivered).toBe(0);
    expect(replayed.num_ack_pending).toBe(0);
    await expect(info(first.consumer)).rejects.toThrow(/not found/i);

    // Second turns on the survivor: every session is where its first turn left it.
    await send(survivor, users, 2, (u) => `City${u.slice(1)}`);
    const ids = users.flatMap((u) => [`${u}-t1`, `${u}-t2`]);
    await until(answered(ids), 'the second turns answered', 30_000);
    await sleep(1_000);
    const counts = countBy(egress.messages, (m) => m.data.inReplyTo);
    const lost = ids.filter((id) => !counts.has(id));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    expect({ lost, duplicated }).toEqual({ lost: [], duplicated: [] });
    for (const u of users) {
      const reply = egress.messages.find((m) => m.data.inReplyTo === `${u}-t2`)!.data;
      expect(reply.replies[0]?.text).toMatch(new RegExp(`^Weather for City${u.slice(1)}: `));
    }
    expect(ingress.messages).toHaveLength(60);
  }, 120_000);
});
