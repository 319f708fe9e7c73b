import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressMessage } from '../src/core/message-envelope.js';
import { partitionFor } from '../src/messaging/nats/nats-subjects.js';
import {
  deleteStreams,
  requireNats,
  SHARED_NATS_URL,
  TestRedisServer,
  uniqueNatsNamespace,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { countBy, post, replicaBundle, sleep, StreamObserver, until } from './support/replicas.js';
import { RunnerProcess } from './support/runner-process.js';

/**
 * SIGTERM drains: the replica stops pulling, finishes the messages it holds, acks them, and
 * exits; none of them is redelivered elsewhere. To have messages in flight for certain, the test
 * pauses Redis writes for 2 s (CLIENT PAUSE WRITE), so the handlers are running, waiting at
 * their commits, when SIGTERM arrives. The pause would stall every client of a server, so the
 * replicas use a redis-server of this file's own, never the shared one.
 */

const ns = uniqueNatsNamespace('drain');
const redisPrefix = uniqueRedisPrefix('drain');
const SP = ns.GREENTIC_NATS_SUBJECT_PREFIX;
const WEB = '/webhooks/webhook/demo/dev/default/web';
const PARTITIONS = 16;
/** Four users whose sessions sit on four different partitions, so all four can be in flight at once. */
const USERS = (() => {
  const taken = new Set<number>();
  const out: string[] = [];
  for (let i = 1; out.length < 4; i++) {
    const p = partitionFor(`demo:webhook:d${i}:d${i}`, PARTITIONS);
    if (!taken.has(p)) {
      taken.add(p);
      out.push(`d${i}`);
    }
  }
  return out;
})();

let a: RunnerProcess | undefined;
let b: RunnerProcess | undefined;
let egress: StreamObserver<EgressMessage>;
let bundle: string;
let redisServer: TestRedisServer;

function env(): Record<string, string | number> {
  return {
    GREENTIC_BUNDLE: bundle,
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: SHARED_NATS_URL,
    REDIS_URL: redisServer.url,
    ...ns,
    GREENTIC_REDIS_PREFIX: redisPrefix,
    GREENTIC_NATS_PARTITIONS: PARTITIONS,
    GREENTIC_NATS_ACK_WAIT_MS: 30_000,
    GREENTIC_SESSION_LEASE_MS: 5_000,
    GREENTIC_DRAIN_TIMEOUT_MS: 20_000,
  };
}

beforeAll(async () => {
  await requireNats();
  redisServer = await TestRedisServer.start();
  bundle = replicaBundle();
  a = await RunnerProcess.start('A', { ...env(), LOG_LEVEL: 'info' });
  egress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`,
    `${SP}.greentic.messaging.egress.>`,
  );
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.kill('SIGKILL'), b?.kill('SIGKILL')]);
  await egress?.stop();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await redisServer?.stop();
});

async function ingressDeliveries(): Promise<{ deliveries: number; ackPending: number }> {
  const nc = await connect({ servers: SHARED_NATS_URL });
  const jsm = await jetstreamManager(nc);
  let deliveries = 0;
  let ackPending = 0;
  for await (const ci of jsm.consumers.list(`${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`)) {
    deliveries += ci.delivered.consumer_seq;
    ackPending += ci.num_ack_pending;
  }
  await nc.close();
  return { deliveries, ackPending };
}

describe('graceful shutdown on SIGTERM', () => {
  it('stops pulling, finishes and acks in-flight messages, then exits; the next replica takes the rest', async () => {
    for (const u of USERS)
      expect((await post(a!.url, WEB, { userId: u, text: 'hi', messageId: `${u}-t1` })).status).toBe(200);
    // Redis refuses writes for 2 s (as a slow or failing-over store would): the handlers run
    // and wait at their commits.
    const redis = new Redis(redisServer.url);
    await redis.call('CLIENT', 'PAUSE', '2000', 'WRITE');
    redis.disconnect();
    for (const u of USERS)
      expect(
        (await post(a!.url, WEB, { userId: u, text: `Drain${u}`, messageId: `${u}-t2` }, '')).status,
      ).toBe(202);
    // All four are now held by A's handlers, which wait for Redis to take their commits.
    await until(
      async () => (await ingressDeliveries()).ackPending === USERS.length,
      'four messages in flight on A',
    );

    const t0 = Date.now();
    const exit = await a!.kill('SIGTERM');
    const tookMs = Date.now() - t0;
    // Exit 0 means the drain finished everything it held before the timeout; it had to wait for
    // Redis (up to 2 s) to do so.
    expect(exit, a!.log.slice(-3000)).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeGreaterThanOrEqual(1_000);
    expect(tookMs).toBeLessThan(15_000);
    expect(a!.log).toContain('"msg":"NATS bus closed"');

    // Every in-flight message finished on A (the component ran: the weather reply), once.
    await until(
      () => USERS.every((u) => egress.messages.some((m) => m.data.inReplyTo === `${u}-t2`)),
      'the drained replies',
    );
    for (const u of USERS) {
      const reply = egress.messages.find((m) => m.data.inReplyTo === `${u}-t2`)!.data;
      expect(reply.replies[0]?.text).toMatch(new RegExp(`^Weather for Drain${u}: `));
    }
    const after = await ingressDeliveries();
    expect(after.ackPending).toBe(0);
    expect(after.deliveries).toBe(USERS.length * 2);

    // A new replica takes over the traffic.
    b = await RunnerProcess.start('B', env());
    const t3 = await post(b.url, WEB, { userId: 'd1', text: 'again', messageId: 'd1-t3' });
    expect(t3.status).toBe(200);
    expect(t3.body.replies?.[0]?.text).toBe("Hi there! Let's get your weather forecast.");
    await sleep(500);
    const counts = countBy(egress.messages, (m) => m.data.inReplyTo);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    expect(counts.size).toBe(USERS.length * 2 + 1);
  });
});
