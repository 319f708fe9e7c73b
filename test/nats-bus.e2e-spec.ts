import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BadRequestError, GreenticError, PayloadTooLargeError } from '../src/common/errors.js';
import type { BusMessage } from '../src/core/message-bus.js';
import { replySubject } from '../src/core/subjects.js';
import { NatsBus } from '../src/messaging/nats/nats.bus.js';
import type { NatsBusOptions } from '../src/messaging/nats/nats-bus.options.js';
import { ReplicaLeases } from './support/replica-leases.js';
import {
  deleteStreams,
  requireNats,
  requireRedis,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from './support/nats-redis-servers.js';

/**
 * NatsBus against the machine's NATS (JetStream). Each test gets its own streams and subject
 * prefix, so test files running in parallel never see each other's messages.
 */

const SUBJ = (tenant = 'acme', channel = 'web') =>
  `greentic.messaging.ingress.dev.${tenant}.default.${channel}`;
const EGRESS = 'greentic.messaging.egress.dev.acme.default.web';

let buses: NatsBus[] = [];
let namespaces: string[] = [];
let raw: NatsConnection;

/** Partition leases in Redis, as in production: the buses of one namespace are one deployment's replicas. */
const leases = new ReplicaLeases();

async function bus(
  ns: ReturnType<typeof uniqueNatsNamespace>,
  extra: Partial<NatsBusOptions> = {},
): Promise<NatsBus> {
  const { replica, leases: own } = await leases.replica(ns.GREENTIC_NATS_STREAM_PREFIX);
  const b = await NatsBus.connect(
    {
      replica,
      partitionLeaseMs: 1_500,
      servers: SHARED_NATS_URL,
      streamPrefix: ns.GREENTIC_NATS_STREAM_PREFIX,
      subjectPrefix: ns.GREENTIC_NATS_SUBJECT_PREFIX,
      partitions: 4,
      ackWaitMs: 2_000,
      maxDeliver: 3,
      backoffBaseMs: 50,
      drainTimeoutMs: 5_000,
      ...extra,
    },
    own,
  );
  buses.push(b);
  return b;
}

function namespace(label: string): ReturnType<typeof uniqueNatsNamespace> {
  const ns = uniqueNatsNamespace(label);
  namespaces.push(ns.GREENTIC_NATS_STREAM_PREFIX);
  return ns;
}

function until(cond: () => boolean, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) return resolve();
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  raw = await connect({ servers: SHARED_NATS_URL });
});

afterEach(async () => {
  await Promise.all(buses.map((b) => b.close()));
  buses = [];
  for (const p of namespaces) await deleteStreams(SHARED_NATS_URL, p);
  namespaces = [];
  await leases.close();
});

afterAll(async () => {
  await raw?.close();
});

describe('NatsBus (JetStream)', () => {
  it('creates the three streams, publishes with headers and de-duplicates on Nats-Msg-Id', async () => {
    const ns = namespace('dedupe');
    const b = await bus(ns);
    const jsm = await jetstreamManager(raw);
    for (const s of ['INGRESS', 'EGRESS', 'DLQ']) {
      const info = await jsm.streams.info(`${ns.GREENTIC_NATS_STREAM_PREFIX}_${s}`);
      expect(info.config.subjects).toEqual([
        `${ns.GREENTIC_NATS_SUBJECT_PREFIX}.greentic.messaging.${s.toLowerCase()}.>`,
      ]);
      expect(info.config.duplicate_window).toBe(120 * 1e9);
    }
    const got: BusMessage[] = [];
    await b.subscribe(SUBJ(), async (m) => void got.push(m), { queue: 'workers' });
    const headers = {
      'greentic-tenant': 'acme',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    };
    expect(await b.publish(SUBJ(), { sessionKey: 's1', n: 1 }, { msgId: 'm-1', headers })).toEqual({
      duplicate: false,
    });
    // The publisher learns the repeat was dropped (the webhook answers it as a duplicate).
    expect(await b.publish(SUBJ(), { sessionKey: 's1', n: 1 }, { msgId: 'm-1', headers })).toEqual({
      duplicate: true,
    });
    await b.publish(SUBJ(), { sessionKey: 's1', n: 2 }, { msgId: 'm-2', headers });
    await until(() => got.length >= 2, 'two deliveries');
    await sleep(300);
    expect(got.map((m) => (m.data as { n: number }).n)).toEqual([1, 2]);
    expect(got[0]!.subject).toBe(SUBJ());
    expect(got[0]!.headers['Nats-Msg-Id']).toBe(`${SUBJ()}|m-1`);
    expect(got[0]!.headers['greentic-tenant']).toBe('acme');
    expect(got[0]!.headers['traceparent']).toBe(headers.traceparent);
    expect(got[0]!.deliveryCount).toBe(1);
  });

  it('de-duplicates per subject: two tenants may reuse a platform message id', async () => {
    const b = await bus(namespace('scoped'));
    const got: string[] = [];
    await b.subscribe('greentic.messaging.ingress.>', async (m) => void got.push(m.subject), {
      queue: 'workers',
    });
    await b.publish(SUBJ('acme'), { sessionKey: 'a' }, { msgId: '1' });
    await b.publish(SUBJ('globex'), { sessionKey: 'g' }, { msgId: '1' });
    await b.publish(SUBJ('globex'), { sessionKey: 'g' }, { msgId: '1' });
    await until(() => got.length === 2, 'one message per tenant');
    await sleep(300);
    expect(got.sort()).toEqual([SUBJ('acme'), SUBJ('globex')]);
  });

  it('shares a queue between replicas: every message runs exactly once', async () => {
    const ns = namespace('queue');
    const [a, b] = [await bus(ns), await bus(ns)];
    const seen = new Map<string, number>();
    const byReplica = { a: 0, b: 0 };
    const handler = (who: 'a' | 'b') => async (m: BusMessage<{ id: string }>) => {
      byReplica[who]++;
      await sleep(5);
      seen.set(m.data.id, (seen.get(m.data.id) ?? 0) + 1);
    };
    await a.subscribe(SUBJ(), handler('a'), { queue: 'workers' });
    await b.subscribe(SUBJ(), handler('b'), { queue: 'workers' });
    const N = 60;
    await Promise.all(
      Array.from({ length: N }, (_, i) =>
        a.publish(SUBJ(), { id: `m${i}`, sessionKey: `s${i}` }, { msgId: `m${i}` }),
      ),
    );
    await until(() => seen.size === N, `${N} messages`);
    await sleep(300);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    expect(byReplica.a + byReplica.b).toBe(N);
  });

  it("runs one session's messages one at a time, in publish order, across two replicas", async () => {
    const ns = namespace('order');
    const [a, b] = [await bus(ns), await bus(ns)];
    const order: number[] = [];
    let active = 0;
    let maxActive = 0;
    const handler = async (m: BusMessage<{ n: number }>) => {
      active++;
      maxActive = Math.max(maxActive, active);
      await sleep(Math.random() * 15);
      order.push(m.data.n);
      active--;
    };
    await a.subscribe(SUBJ(), handler, { queue: 'workers' });
    await b.subscribe(SUBJ(), handler, { queue: 'workers' });
    const N = 25;
    for (let i = 0; i < N; i++)
      await (i % 2 ? a : b).publish(SUBJ(), { n: i, sessionKey: 'one-session' }, { msgId: `o${i}` });
    await until(() => order.length === N, `${N} messages`);
    expect(order).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(maxActive).toBe(1);
  });

  it('naks with backoff on a transient error, then acks', async () => {
    const ns = namespace('nak');
    const b = await bus(ns);
    const counts: number[] = [];
    await b.subscribe(
      SUBJ(),
      async (m) => {
        counts.push(m.deliveryCount);
        if (m.deliveryCount < 3) throw new Error('transient');
      },
      { queue: 'workers', maxDeliver: 5 },
    );
    await b.publish(SUBJ(), { sessionKey: 's' }, { msgId: 'x' });
    await until(() => counts.length === 3, 'three deliveries');
    await sleep(500);
    expect(counts).toEqual([1, 2, 3]);
  });

  it('dead-letters a poison message after max deliveries and a permanent error at once; others are unaffected', async () => {
    const ns = namespace('dlq');
    const b = await bus(ns);
    const dead: BusMessage<{
      subject: string;
      error: { code: string };
      deliveries: number;
      data: { kind: string };
    }>[] = [];
    await b.subscribe('greentic.messaging.dlq.>', async (m) => void dead.push(m as (typeof dead)[number]), {
      queue: 'dlq-readers',
    });
    const ok: string[] = [];
    let poisonAttempts = 0;
    await b.subscribe(
      SUBJ(),
      async (m: BusMessage<{ kind: string; id: string }>) => {
        if (m.data.kind === 'poison') {
          poisonAttempts++;
          throw new Error('always fails');
        }
        if (m.data.kind === 'refused') throw new BadRequestError('not acceptable');
        ok.push(m.data.id);
      },
      { queue: 'workers' },
    );
    await b.publish(SUBJ(), { kind: 'poison', id: 'p', sessionKey: 'a' }, { msgId: 'p' });
    await b.publish(SUBJ(), { kind: 'refused', id: 'r', sessionKey: 'b' }, { msgId: 'r' });
    for (let i = 0; i < 10; i++)
      await b.publish(SUBJ(), { kind: 'ok', id: `ok${i}`, sessionKey: `ok${i}` }, { msgId: `ok${i}` });
    await until(() => dead.length === 2 && ok.length === 10, 'two dead letters and ten good messages');
    expect(poisonAttempts).toBe(3);
    const poison = dead.find((d) => d.data.data.kind === 'poison')!;
    expect(poison.subject).toBe('greentic.messaging.dlq.dev.acme.default.web');
    expect(poison.data.subject).toBe(SUBJ());
    expect(poison.data.deliveries).toBe(3);
    expect(poison.headers['greentic-error']).toBe('handler_failed');
    const refused = dead.find((d) => d.data.data.kind === 'refused')!;
    expect(refused.data.deliveries).toBe(1);
    expect(refused.data.error.code).toBe('bad_request');
    expect(ok.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `ok${i}`).sort());
  });

  it("honours a platform's Retry-After before redelivering", async () => {
    const ns = namespace('retryafter');
    const b = await bus(ns);
    const at: number[] = [];
    await b.subscribe(
      SUBJ(),
      async () => {
        at.push(Date.now());
        if (at.length === 1)
          throw new GreenticError('egress_failed', 'callback answered 429', 502, {
            retryable: true,
            retryAfter: '1',
          });
      },
      { queue: 'workers' },
    );
    await b.publish(SUBJ(), { sessionKey: 's' });
    await until(() => at.length === 2, 'redelivery');
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(950);
  });

  it('keeps a long handler alive with in-progress heartbeats (no redelivery past ack_wait)', async () => {
    const ns = namespace('working');
    const [a, b] = [await bus(ns, { ackWaitMs: 1_000 }), await bus(ns, { ackWaitMs: 1_000 })];
    const deliveries: number[] = [];
    const handler = async (m: BusMessage) => {
      deliveries.push(m.deliveryCount);
      await sleep(3_500);
    };
    await a.subscribe(SUBJ(), handler, { queue: 'workers' });
    await b.subscribe(SUBJ(), handler, { queue: 'workers' });
    await a.publish(SUBJ(), { sessionKey: 's' }, { msgId: 'long' });
    await until(() => deliveries.length === 1, 'first delivery');
    await sleep(4_500);
    expect(deliveries).toEqual([1]);
  });

  it('redelivers to another replica when one dies mid-message', async () => {
    const ns = namespace('die');
    const a = await bus(ns, { ackWaitMs: 1_000 });
    const b = await bus(ns, { ackWaitMs: 1_000 });
    const who: string[] = [];
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    await a.subscribe(
      SUBJ(),
      async () => {
        who.push('a');
        await stuck;
      },
      { queue: 'workers' },
    );
    await a.publish(SUBJ(), { sessionKey: 's' }, { msgId: 'die-1' });
    await until(() => who.length === 1, 'delivery to a');
    // Simulate a crash: the connection goes away without ack, nak or drain.
    await (a as unknown as { nc: NatsConnection }).nc.close();
    await b.subscribe(SUBJ(), async (m) => void who.push(`b${m.deliveryCount}`), { queue: 'workers' });
    await until(() => who.length === 2, 'redelivery to b');
    expect(who).toEqual(['a', 'b2']);
    release();
  });

  it('fans out to every plain (queue-less) subscriber, as the ReplyWaiter needs', async () => {
    const ns = namespace('fanout');
    const [a, b] = [await bus(ns), await bus(ns)];
    const seen: string[] = [];
    await a.subscribe(EGRESS.replace(/web$/, '*'), async (m) => void seen.push(`a:${m.subject}`));
    await b.subscribe('greentic.messaging.egress.>', async (m) => void seen.push(`b:${m.subject}`));
    await a.publish(EGRESS, { sessionKey: 's', inReplyTo: 'x' }, { msgId: 'x:reply' });
    await until(() => seen.length === 2, 'both subscribers');
    expect(seen.sort()).toEqual([`a:${EGRESS}`, `b:${EGRESS}`]);
  });

  it("answers a waiting replica with the egress publish itself: its reply subject gets it once, a repeat too, no other replica's does", async () => {
    const ns = namespace('awaited');
    const [a, b, c] = [await bus(ns), await bus(ns), await bus(ns)];
    const seen: string[] = [];
    await b.subscribe(replySubject('rb'), async (m) => void seen.push(`b:${m.subject}`));
    await c.subscribe(replySubject('rc'), async (m) => void seen.push(`c:${m.subject}`));
    // Everything on the wire in this namespace: one message per publish, none to a reply subject.
    const wire: string[] = [];
    const tap = raw.subscribe(`${ns.GREENTIC_NATS_SUBJECT_PREFIX}.>`, {
      callback: (_e, m) => void wire.push(m.subject),
    });
    await raw.flush();
    const out = { sessionKey: 's', inReplyTo: 'y' };
    expect(await a.publish(EGRESS, out, { msgId: 'y:reply', replyTo: replySubject('rb') })).toEqual({
      duplicate: false,
    });
    // A replay of the stored replies: the stream drops it, the waiting caller still gets it.
    expect(await a.publish(EGRESS, out, { msgId: 'y:reply', replyTo: replySubject('rb') })).toEqual({
      duplicate: true,
    });
    await until(() => seen.length === 2, 'the waiting replica');
    await sleep(200);
    expect(seen).toEqual([`b:${EGRESS}`, `b:${EGRESS}`]);
    tap.unsubscribe();
    expect(wire).toHaveLength(2);
    for (const w of wire)
      expect(w).toMatch(/\.greentic\.messaging\.egress\.dev\.acme\.default\.web\.p\d+\.rb$/);
  });

  it('moves messages published straight to NATS without a partition onto their partition, in order', async () => {
    const ns = namespace('repart');
    const b = await bus(ns);
    const got: number[] = [];
    await b.subscribe(SUBJ(), async (m: BusMessage<{ n: number }>) => void got.push(m.data.n), {
      queue: 'workers',
    });
    // The copies as they cross the wire: partitioned subjects end in `.p{N}`.
    const copies: string[] = [];
    const tap = raw.subscribe(`${ns.GREENTIC_NATS_SUBJECT_PREFIX}.${SUBJ()}.>`, {
      callback: (_e, m) => {
        if (/\.p\d+$/.test(m.subject)) copies.push(m.headers?.get('Nats-Msg-Id') ?? '');
      },
    });
    await raw.flush();
    const js = (await jetstreamManager(raw)).jetstream();
    for (let n = 0; n < 5; n++) {
      await js.publish(
        `${ns.GREENTIC_NATS_SUBJECT_PREFIX}.${SUBJ()}`,
        JSON.stringify({ n, sessionKey: 'ext' }),
        { msgID: `ext-${n}` },
      );
    }
    await until(() => got.length === 5, 'five repartitioned messages');
    expect(got).toEqual([0, 1, 2, 3, 4]);
    // Each copy carries an id derived from the original's, so a second repartitioner's copy of
    // the same message would be dropped as a duplicate.
    await until(() => copies.length === 5, 'five copies on the wire');
    tap.unsubscribe();
    expect(copies).toEqual([0, 1, 2, 3, 4].map((n) => `rp:ext-${n}`));
  });

  it('reports streams and consumer lag in health, and down once closed', async () => {
    const ns = namespace('health');
    const b = await bus(ns);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await b.subscribe(SUBJ(), () => gate, { queue: 'workers' });
    for (let i = 0; i < 3; i++) await b.publish(SUBJ(), { sessionKey: 'same' }, { msgId: `h${i}` });
    await sleep(300);
    const h = await b.health();
    expect(h.up).toBe(true);
    expect(h.details['connected']).toBe(true);
    const lag = (h.details['lag'] as Record<string, { pending: number; ackPending: number }>)[
      `workers ${SUBJ()}`
    ]!;
    // The partition's owner took all three; the session runs them one at a time.
    expect(lag.ackPending).toBe(3);
    expect(lag.pending).toBe(0);
    expect((h.details['streams'] as Record<string, { messages: number }>)['ingress']!.messages).toBe(3);
    release();
    await b.close();
    await sleep(600);
    expect((await b.health()).up).toBe(false);
  });

  it('drains on close: the in-flight message finishes and is acked, nothing more is pulled', async () => {
    const ns = namespace('drain');
    const a = await bus(ns);
    const done: string[] = [];
    let started = 0;
    await a.subscribe(
      SUBJ(),
      async (m: BusMessage<{ id: string }>) => {
        started++;
        await sleep(800);
        done.push(m.data.id);
      },
      { queue: 'workers' },
    );
    await a.publish(SUBJ(), { id: 'first', sessionKey: 's' }, { msgId: 'first' });
    await a.publish(SUBJ(), { id: 'second', sessionKey: 's' }, { msgId: 'second' });
    await until(() => started === 1, 'first message started');
    await a.close();
    expect(done).toEqual(['first']);
    // The second message is still there for the next replica, and the first is not redelivered.
    const b = await bus(ns);
    const later: string[] = [];
    await b.subscribe(SUBJ(), async (m: BusMessage<{ id: string }>) => void later.push(m.data.id), {
      queue: 'workers',
    });
    await until(() => later.length === 1, 'second message on the next replica');
    await sleep(2_500);
    expect(later).toEqual(['second']);
  });

  it('updates stream settings from config at start-up', async () => {
    const ns = namespace('update');
    await bus(ns, { maxAgeSeconds: 3600, duplicateWindowSeconds: 60 });
    await bus(ns, { maxAgeSeconds: 7200, duplicateWindowSeconds: 90 });
    const info = await (
      await jetstreamManager(raw)
    ).streams.info(`${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`);
    expect(info.config.max_age).toBe(7200 * 1e9);
    expect(info.config.duplicate_window).toBe(90 * 1e9);
  });

  it('refuses a message larger than the server accepts as bad input, not as an outage', async () => {
    const b = await bus(namespace('big'));
    const err = await b
      .publish(SUBJ(), { sessionKey: 's', blob: 'x'.repeat(2 * 1024 * 1024) })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadTooLargeError);
  });

  it('refuses a duplicate window longer than the stream max age, naming the key', async () => {
    await expect(
      bus(namespace('badcfg'), { maxAgeSeconds: 60, duplicateWindowSeconds: 120 }),
    ).rejects.toThrow(/GREENTIC_NATS_DUPLICATE_WINDOW_S/);
  });
});
