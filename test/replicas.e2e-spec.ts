import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { INestApplication } from '@nestjs/common';
import { jetstream } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { FlowExecutorService } from '../src/flows/flow-executor.service.js';
import type { FlowRunInput } from '../src/flows/flow-run.types.js';
import type { EgressMessage, MessageEnvelope } from '../src/core/message-envelope.js';
import { MESSAGE_BUS, type MessageBus } from '../src/core/message-bus.js';
import { SESSION_STORE, type SessionStore } from '../src/core/session-store.js';
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
import {
  countBy,
  natsBusHealth,
  type NatsBusHealth,
  ORDER_PROBE_ANSWERS,
  post,
  replicaBundle,
  sleep,
  StreamObserver,
  until,
} from './support/replicas.js';

/**
 * Two runner replicas (two Nest apps in this process) on the machine's NATS and Redis, with their
 * own streams and key prefix. Both apps' FlowExecutorService.run is wrapped (not replaced) to
 * record which replica ran which message, and whether two runs of one session ever overlapped.
 */

const PARTITIONS = 8;
const ns = uniqueNatsNamespace('replicas');
const redisPrefix = uniqueRedisPrefix('replicas');
const SP = ns.GREENTIC_NATS_SUBJECT_PREFIX;
const WEB = '/webhooks/webhook/demo/dev/default/web';
const ORDER = '/webhooks/webhook/demo/dev/default/order';
const HOOK = '/webhooks/webhook/demo/dev/default/hook';

interface Run {
  replica: 'A' | 'B';
  messageId: string;
  sessionKey: string;
  start: number;
  end: number;
}

const runs: Run[] = [];
let apps: INestApplication[] = [];
const urls: string[] = [];
let egress: StreamObserver<EgressMessage>;
let ingress: StreamObserver<MessageEnvelope>;
let dlq: StreamObserver<{ subject: string; error: { code: string }; data: unknown }>;
let callback: Server;
const callbacks: { messageId: string; status: number; at: number }[] = [];
let failNext: Record<string, { status: number; times: number; retryAfter?: string }> = {};
/** Message ids whose flow run is held this many ms first. */
const slowFlows = new Map<string, number>();

function instrument(app: INestApplication, replica: 'A' | 'B'): void {
  const executor = app.get(FlowExecutorService);
  const original = executor.run.bind(executor);
  executor.run = async (input: FlowRunInput) => {
    const r: Run = {
      replica,
      messageId: input.message.id,
      sessionKey: input.message.sessionKey,
      start: performance.now(),
      end: 0,
    };
    try {
      // A flow that outlasts the sync timeout, for the 504 case.
      const hold = slowFlows.get(input.message.id);
      if (hold) await new Promise((r) => setTimeout(r, hold));
      return await original(input);
    } finally {
      r.end = performance.now();
      runs.push(r);
    }
  };
}

function config(): Record<string, string | number> {
  return {
    PORT: 0,
    LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
    GREENTIC_BUNDLE: replicaBundle(`http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`),
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: SHARED_NATS_URL,
    REDIS_URL: SHARED_REDIS_URL,
    ...ns,
    GREENTIC_REDIS_PREFIX: redisPrefix,
    GREENTIC_NATS_PARTITIONS: PARTITIONS,
    GREENTIC_NATS_ACK_WAIT_MS: 3_000,
    GREENTIC_NATS_BACKOFF_MS: 100,
    GREENTIC_NATS_MAX_DELIVER: 3,
    GREENTIC_SESSION_LEASE_MS: 3_000,
    GREENTIC_SYNC_TIMEOUT_MS: 5_000,
  };
}

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  callback = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      const { messageId } = JSON.parse(body) as { messageId: string };
      const f = failNext[messageId];
      let status = 200;
      if (f && f.times > 0) {
        f.times--;
        status = f.status;
        if (f.retryAfter) res.setHeader('retry-after', f.retryAfter);
      }
      callbacks.push({ messageId, status, at: Date.now() });
      res.statusCode = status;
      res.end();
    });
  });
  await new Promise<void>((r) => callback.listen(0, '127.0.0.1', r));
  const cfg = config();
  for (const replica of ['A', 'B'] as const) {
    const { app, url } = await startApp({ config: cfg });
    instrument(app, replica);
    apps.push(app);
    urls.push(url);
  }
  // Tests that say which replica runs a session need its partition's owner settled: B joins after
  // A has claimed every partition and takes its share at a heartbeat, later on a loaded machine.
  let seen: unknown = 'no /health answer yet';
  await until(
    async () => {
      let shares: NatsBusHealth[];
      try {
        shares = await Promise.all(urls.map((u) => natsBusHealth(u)));
      } catch (e) {
        seen = `/health: ${(e as Error).message}`;
        return false;
      }
      seen = shares.map((h) =>
        Object.fromEntries(Object.entries(h.owned).map(([g, o]) => [g, o.map((x) => x.partition)])),
      );
      const groups = new Set(shares.flatMap((h) => Object.keys(h.owned)));
      if (groups.size === 0) return false;
      return [...groups].every((g) => {
        const counts = shares.map((h) => (h.owned[g] ?? []).length);
        const partitions = new Set(shares.flatMap((h) => (h.owned[g] ?? []).map((o) => o.partition)));
        return (
          counts.every((n) => n > 0) &&
          partitions.size === PARTITIONS &&
          counts[0]! + counts[1]! === PARTITIONS
        );
      });
    },
    'both replicas owning their share of every partition group',
    // 30 s was once too short in CI (2 cores, three files at a time, 400 s of imports).
    60_000,
    () => seen,
  );
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
  dlq = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_DLQ`,
    `${SP}.greentic.messaging.dlq.>`,
  );
}, 120_000);

afterAll(async () => {
  await Promise.all(apps.map((a) => a.close()));
  apps = [];
  await Promise.all([egress?.stop(), ingress?.stop(), dlq?.stop()]);
  await new Promise((r) => callback?.close(r));
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix);
});

const [A, B] = [0, 1];
const repliesFor = (id: string) => egress.messages.filter((m) => m.data.inReplyTo === id);

describe('two replicas on NATS JetStream + Redis', () => {
  it('runs on NatsBus and RedisSessionStore, and /health shows NATS and Redis', async () => {
    // The provided bus is the NATS one, decorated (in-flight counts, telemetry) where it is provided.
    expect(apps[A]!.get<MessageBus>(MESSAGE_BUS).kind).toBe('nats');
    expect(apps[A]!.get<SessionStore>(SESSION_STORE).kind).toBe('redis');
    const res = await fetch(`${urls[B]}/health`);
    const body = (await res.json()) as {
      status: string;
      info: Record<string, { status: string } & Record<string, unknown>>;
    };
    expect(res.status).toBe(200);
    expect(body.info['bus']).toMatchObject({ status: 'up', kind: 'nats', connected: true });
    expect(body.info['bus']!['lag']).toBeDefined();
    expect(body.info['sessions']).toMatchObject({ status: 'up', kind: 'redis', connection: 'ready' });
    expect(typeof body.info['sessions']!['pingMs']).toBe('number');
  });

  it('holds the two-turn demo conversation with turn 1 on replica A and turn 2 on replica B', async () => {
    const t1 = await post(urls[A]!, WEB, { userId: 'alice', text: 'hi', messageId: 'alice-1' });
    expect(t1.status).toBe(200);
    expect(t1.body.replies?.map((r) => r.text)).toEqual([
      "Hi there! Let's get your weather forecast.",
      'What location would you like a forecast for?',
    ]);
    const t2 = await post(urls[B]!, WEB, { userId: 'alice', text: 'Paris', messageId: 'alice-2' });
    expect(t2.status).toBe(200);
    expect(t2.body.replies?.[0]?.text).toMatch(/^Weather for Paris: .+/);
    // The session lives in Redis under the tenant's prefix, and the flow ended (no parked snapshot).
    const r = new Redis(SHARED_REDIS_URL);
    const stored = await r.hget(`${redisPrefix}:demo/dev/default:{demo:webhook:alice:alice}:s`, 'r');
    r.disconnect();
    expect(JSON.parse(stored!)).toMatchObject({ snapshot: null });
    await until(() => repliesFor('alice-2').length === 1, 'turn 2 on egress');
    expect(repliesFor('alice-1')).toHaveLength(1);
  });

  it('runs 20 messages of one session sent at once to both replicas one at a time, in publish order', async () => {
    const user = 'orderly';
    const start = await post(urls[A]!, ORDER, { userId: user, text: 'start', messageId: 'order-start' });
    expect(start.body.status).toBe('parked');
    const ids = Array.from({ length: ORDER_PROBE_ANSWERS }, (_, i) => `m${String(i + 1).padStart(2, '0')}`);
    const sent = await Promise.all(
      ids.map((id, i) => post(urls[i % 2]!, ORDER, { userId: user, text: id, messageId: id }, '')),
    );
    expect(sent.map((s) => s.status)).toEqual(ids.map(() => 202));
    await until(() => ids.every((id) => repliesFor(id).length === 1), 'a reply to every message');
    const published = ingress.messages.filter((m) => ids.includes(m.data.id)).map((m) => m.data.id);
    expect(published.sort()).toEqual([...ids].sort());
    const publishOrder = ingress.messages.filter((m) => ids.includes(m.data.id)).map((m) => m.data.id);
    // The last answer's reply renders every answer in the order the flow stored them.
    const final = repliesFor(publishOrder[publishOrder.length - 1]!)[0]!.data;
    expect(final.status).toBe('completed');
    expect(final.replies[0]!.text).toBe(publishOrder.join(','));
    // Execution order across both replicas equals publish order, and no two runs overlapped.
    const mine = runs.filter((r) => ids.includes(r.messageId)).sort((a, b) => a.start - b.start);
    expect(mine.map((r) => r.messageId)).toEqual(publishOrder);
    for (let i = 1; i < mine.length; i++) expect(mine[i]!.start).toBeGreaterThanOrEqual(mine[i - 1]!.end);
    // Sent to both replicas, run by one: the owner of the session's partition.
    expect(new Set(mine.map((r) => r.replica)).size).toBe(1);
  });

  it('runs the same provider message id once and replies once, whichever replica gets it', async () => {
    const body = { userId: 'redo', text: 'hi', messageId: 'redo-1' };
    const first = await post(urls[A]!, WEB, body, '');
    const second = await post(urls[B]!, WEB, body, '');
    expect([first.status, second.status]).toEqual([202, 202]);
    // The repeat is dropped by JetStream inside its window, and says so.
    expect(second.body).toMatchObject({ duplicate: true, messageId: 'redo-1' });
    await until(() => repliesFor('redo-1').length === 1, 'the reply');
    // Past JetStream's duplicate window the same envelope arrives with a new Nats-Msg-Id:
    // the processed id stored with the session still stops it.
    const env = ingress.messages.find((m) => m.data.id === 'redo-1')!.data;
    await apps[B]!.get<MessageBus>(MESSAGE_BUS).publish(
      'greentic.messaging.ingress.dev.demo.default.web',
      env,
      { msgId: 'redo-1-again' },
    );
    await until(
      () => ingress.messages.filter((m) => m.data.id === 'redo-1').length === 2,
      'the second copy on ingress',
    );
    await sleep(1_000);
    expect(runs.filter((r) => r.messageId === 'redo-1')).toHaveLength(1);
    expect(repliesFor('redo-1')).toHaveLength(1);
  });

  it('answers 504 when the flow outlasts the sync timeout, and still delivers the reply through egress', async () => {
    // The flow takes longer than the sync timeout (5 s), on whichever replica owns the session.
    slowFlows.set('slow-1', 5_500);
    const res = await post(urls[B]!, WEB, { userId: 'slowpoke', text: 'hi', messageId: 'slow-1' });
    expect(res.status).toBe(504);
    expect(res.body['error']).toMatchObject({ code: 'reply_timeout' });
    await until(() => repliesFor('slow-1').length === 1, 'the late reply on egress');
    expect(repliesFor('slow-1')[0]!.data.replies.length).toBeGreaterThan(0);
  });

  it('posts replies to the callback URL, retries 5xx and 429 (Retry-After), dead-letters after max attempts; others unaffected', async () => {
    failNext = {
      'cb-flaky': { status: 503, times: 1 },
      'cb-limited': { status: 429, times: 1, retryAfter: '1' },
      'cb-poison': { status: 500, times: 1_000 },
    };
    for (const id of ['cb-ok', 'cb-flaky', 'cb-limited', 'cb-poison']) {
      const res = await post(urls[id.length % 2]!, HOOK, { userId: id, text: 'hi', messageId: id }, '');
      expect(res.status).toBe(202);
    }
    await until(
      () => dlq.messages.some((m) => (m.data.data as EgressMessage | undefined)?.inReplyTo === 'cb-poison'),
      'the poison reply in the DLQ',
    );
    await until(
      () =>
        ['cb-ok', 'cb-flaky', 'cb-limited'].every((id) =>
          callbacks.some((c) => c.messageId === id && c.status === 200),
        ),
      'the other callbacks',
    );
    const by = (id: string) => callbacks.filter((c) => c.messageId === id);
    expect(by('cb-ok').map((c) => c.status)).toEqual([200]);
    expect(by('cb-flaky').map((c) => c.status)).toEqual([503, 200]);
    const limited = by('cb-limited');
    expect(limited.map((c) => c.status)).toEqual([429, 200]);
    expect(limited[1]!.at - limited[0]!.at).toBeGreaterThanOrEqual(950);
    // The dispatcher allows 5 attempts.
    expect(by('cb-poison').map((c) => c.status)).toEqual([500, 500, 500, 500, 500]);
    const dead = dlq.messages.find(
      (m) => (m.data.data as EgressMessage | undefined)?.inReplyTo === 'cb-poison',
    )!;
    expect(dead.subject).toBe(`${SP}.greentic.messaging.dlq.dev.demo.default.hook`);
    expect(dead.data.subject).toBe('greentic.messaging.egress.dev.demo.default.hook');
  });

  it('dead-letters an ingress message that is not JSON at once; later messages run', async () => {
    const nc = egress.connection;
    await jetstream(nc).publish(`${SP}.greentic.messaging.ingress.dev.demo.default.web`, 'not json {', {
      msgID: 'garbage-1',
    });
    const ok = await post(urls[A]!, WEB, { userId: 'after-garbage', text: 'hi', messageId: 'after-garbage' });
    expect(ok.status).toBe(200);
    await until(
      () => dlq.messages.some((m) => m.data.error.code === 'malformed_json'),
      'the malformed message in the DLQ',
    );
  });

  it("refuses and dead-letters a message on tenant demo's subject that claims tenant other", async () => {
    const js = jetstream(egress.connection);
    const subject = `${SP}.greentic.messaging.ingress.dev.demo.default.web`;
    const forged: MessageEnvelope = {
      id: 'forged-body',
      tenant: 'other',
      env: 'dev',
      team: 'default',
      channel: 'web',
      provider: 'webhook',
      conversationId: 'mallory',
      userId: 'mallory',
      sessionKey: 'other:webhook:mallory:mallory',
      text: 'hi',
      attachments: [],
      timestamp: new Date().toISOString(),
    };
    await js.publish(subject, JSON.stringify(forged), { msgID: 'forged-body' });
    const h = natsHeaders();
    h.set('greentic-tenant', 'other');
    const viaHeader = {
      ...forged,
      id: 'forged-header',
      tenant: 'demo',
      sessionKey: 'demo:webhook:mallory:mallory',
    };
    await js.publish(subject, JSON.stringify(viaHeader), { msgID: 'forged-header', headers: h });
    const refusedIds = () =>
      dlq.messages
        .filter((m) => m.data.error.code === 'tenancy_mismatch')
        .map((m) => (m.data.data as MessageEnvelope).id)
        .sort();
    await until(() => refusedIds().length === 2, 'both forged messages in the DLQ');
    expect(refusedIds()).toEqual(['forged-body', 'forged-header']);
    await sleep(500);
    // The bus's own record, once each, after the one delivery: a refusal is not retried.
    expect(refusedIds()).toEqual(['forged-body', 'forged-header']);
    for (const m of dlq.messages.filter((x) => x.data.error.code === 'tenancy_mismatch')) {
      expect(m.data).toMatchObject({
        subject: 'greentic.messaging.ingress.dev.demo.default.web',
        deliveries: 1,
      });
      const header = Object.entries(m.headers).find(([k]) => k.toLowerCase() === 'greentic-error');
      expect(header?.[1]).toBe('tenancy_mismatch');
    }
    expect(runs.filter((r) => r.messageId.startsWith('forged'))).toHaveLength(0);
    expect(repliesFor('forged-body')).toHaveLength(0);
    expect(repliesFor('forged-header')).toHaveLength(0);
  });

  it('has exactly one reply on egress for every message id it ran', () => {
    const counts = countBy(egress.messages, (m) => m.data.inReplyTo);
    const dupes = [...counts].filter(([, n]) => n !== 1);
    expect(dupes).toEqual([]);
    const ran = new Set(runs.map((r) => r.messageId));
    for (const id of ran) expect(counts.get(id)).toBe(1);
  });
});
