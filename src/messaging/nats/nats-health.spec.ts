import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteStreams,
  requireNats,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from '../../../test/support/nats-redis-servers.js';
import type { NatsBusOptions } from './nats-bus.options.js';
import { JetStreamHealthMonitor } from './nats-health.js';
import { NatsBus } from './nats.bus.js';

/**
 * `/health` of the NATS bus answers from a snapshot read in the background. On the machine's
 * NATS, a second connection listens to `$JS.API.>` and counts the JetStream API requests that
 * name this test's streams: probes must make none, the background refresh must make them.
 */

Logger.overrideLogger(['error']);

const SUBJ = 'greentic.messaging.ingress.dev.acme.default.web';
// Unpartitioned: one consumer and no background work of its own, so every API request counted
// while it is the only subscription comes from health.
const DLQ = 'greentic.messaging.dlq.dev.acme.default.web';
type Namespace = ReturnType<typeof uniqueNatsNamespace>;

let raw: NatsConnection;
let jsm: JetStreamManager;
const buses: NatsBus[] = [];
const prefixes: string[] = [];

beforeAll(async () => {
  await requireNats();
  raw = await connect({ servers: SHARED_NATS_URL });
  jsm = await jetstreamManager(raw);
});

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await Promise.all(prefixes.map((p) => deleteStreams(SHARED_NATS_URL, p)));
  await raw?.close();
});

function namespace(label: string): Namespace {
  const ns = uniqueNatsNamespace(label);
  prefixes.push(ns.GREENTIC_NATS_STREAM_PREFIX);
  return ns;
}

async function bus(ns: Namespace, extra: Partial<NatsBusOptions>): Promise<NatsBus> {
  const b = await NatsBus.connect({
    servers: SHARED_NATS_URL,
    streamPrefix: ns.GREENTIC_NATS_STREAM_PREFIX,
    subjectPrefix: ns.GREENTIC_NATS_SUBJECT_PREFIX,
    storage: 'memory',
    partitions: 4,
    ...extra,
  });
  buses.push(b);
  return b;
}

/** JetStream API requests naming a stream of `streamPrefix`, pulls (`MSG.NEXT`) left out. */
class ApiCounter {
  private constructor(
    private readonly sub: Subscription,
    readonly requests: { subject: string; at: number }[],
  ) {}

  static async start(streamPrefix: string): Promise<ApiCounter> {
    const requests: { subject: string; at: number }[] = [];
    const sub = raw.subscribe('$JS.API.>', {
      callback: (_err, m) => {
        if (m.subject.includes(streamPrefix) && !m.subject.includes('.MSG.NEXT.'))
          requests.push({ subject: m.subject, at: Date.now() });
      },
    });
    await raw.flush();
    return new ApiCounter(sub, requests);
  }

  /** Requests seen so far, after a round trip through the server (so none is still on the way). */
  async count(): Promise<number> {
    await raw.flush();
    return this.requests.length;
  }

  stop(): void {
    this.sub.unsubscribe();
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

type Lag = Record<string, { pending: number; ackPending: number }>;
type JsDetails = { refreshes: number; ageMs: number; refreshMs: number; error?: string };

describe('NatsBus health from a background snapshot (machine NATS)', () => {
  it('answers 20 probes with 0 JetStream API requests; the state comes from the refresh', async () => {
    const ns = namespace('hprobe');
    // A period longer than the test: any request while probing would come from the probes.
    const b = await bus(ns, { healthRefreshMs: 60_000 });
    await b.subscribe(DLQ, async () => undefined, { queue: 'readers' });
    // The pull loop looks its consumer up once after subscribe() returns: not a health request.
    await sleep(500);
    const api = await ApiCounter.start(ns.GREENTIC_NATS_STREAM_PREFIX);

    const first = await b.health(); // starts the refresher and waits for its first read
    expect(first.up).toBe(true);
    const afterFirst = await api.count();
    // One read: an info per stream (3) and one consumer list for the stream consumed.
    expect(api.requests.map((r) => r.subject.split('.').slice(2, 4).join('.')).sort()).toEqual([
      'CONSUMER.LIST',
      'STREAM.INFO',
      'STREAM.INFO',
      'STREAM.INFO',
    ]);

    for (let i = 0; i < 20; i++) {
      const h = await b.health();
      expect(h.up).toBe(true);
      expect(h.details['connected']).toBe(true);
      await sleep(10);
    }
    await api.count();
    expect(api.requests.slice(afterFirst).map((r) => r.subject)).toEqual([]);
    const js = (await b.health()).details['jetstream'] as JsDetails;
    expect(js.refreshes).toBe(1);
    expect(js.ageMs).toBeGreaterThanOrEqual(200);
    api.stop();
  });

  it('refreshes in the background without probes: lag and age follow, one refresh at a time', async () => {
    const ns = namespace('hbg');
    const b = await bus(ns, { healthRefreshMs: 250 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    await b.subscribe(DLQ, () => gate, { queue: 'readers' });
    const api = await ApiCounter.start(ns.GREENTIC_NATS_STREAM_PREFIX);
    await b.health();
    for (let i = 0; i < 3; i++) await b.publish(DLQ, { n: i }, { msgId: `bg${i}` });

    // No probe for two seconds: only the refresher asks the server.
    await sleep(2_000);
    const requests = await api.count();
    const h = await b.health();
    const js = h.details['jetstream'] as JsDetails;
    // ~8 periods of 250 ms in 2 s (each one after the previous read ended); 4 requests each.
    expect(js.refreshes).toBeGreaterThanOrEqual(5);
    expect(requests).toBeGreaterThanOrEqual(4 * 5);
    // Four requests a read (one may be under way while counting), whatever the number of probes.
    expect(requests).toBeLessThanOrEqual(4 * (js.refreshes + 1));
    expect(js.ageMs).toBeLessThan(250 + 1_000);
    const lag = (h.details['lag'] as Lag)[`readers ${DLQ}`]!;
    // The handler holds the first: all three are taken or waiting, none acked.
    expect(lag.ackPending).toBeGreaterThanOrEqual(1);
    expect(lag.ackPending + lag.pending).toBe(3);
    expect((h.details['streams'] as Record<string, { messages: number }>)['dlq']!.messages).toBe(3);
    release();
    api.stop();
  });

  it('reads as down, with the reason, when the last refresh failed, and up once a refresh succeeds', async () => {
    const ns = namespace('hfail');
    const b = await bus(ns, { healthRefreshMs: 200 });
    expect((await b.health()).up).toBe(true);
    const egress = `${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`;
    const cfg = (await jsm.streams.info(egress)).config;
    await jsm.streams.delete(egress);
    await until(async () => !(await b.health()).up, 'health down after the stream went');
    const down = await b.health();
    // The connection is fine: what failed is named.
    expect(down.details['connected']).toBe(true);
    expect((down.details['jetstream'] as JsDetails).error).toMatch(/stream not found/i);
    // The last good snapshot is still shown, with its age.
    expect(down.details['streams']).toBeDefined();

    await jsm.streams.add(cfg);
    await until(async () => (await b.health()).up, 'health up once the stream is back');
    expect((await b.health()).details['jetstream']).not.toHaveProperty('error');
  });

  it('is down once closed, and the refresher stops with the bus', async () => {
    const ns = namespace('hclose');
    const b = await bus(ns, { healthRefreshMs: 100 });
    expect((await b.health()).up).toBe(true);
    const api = await ApiCounter.start(ns.GREENTIC_NATS_STREAM_PREFIX);
    await b.close();
    const n = await api.count();
    await sleep(500);
    expect(await api.count()).toBe(n);
    expect((await b.health()).up).toBe(false);
    api.stop();
  });
});

describe('JetStreamHealthMonitor (machine NATS)', () => {
  it('marks a snapshot older than three periods stale, naming its age', async () => {
    const ns = namespace('hstale');
    const b = await bus(ns, { healthRefreshMs: 60_000 });
    await b.health();
    let now = Date.now();
    const m = new JetStreamHealthMonitor(jsm, {
      streams: { ingress: `${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS` },
      consumers: () => [],
      refreshMs: 1_000,
      now: () => now,
    });
    await m.refresh();
    expect((await m.report()).up).toBe(true);
    now += 2_999;
    expect((await m.report()).up).toBe(true);
    now += 2;
    const stale = await m.report();
    expect(stale.up).toBe(false);
    expect((stale.details['jetstream'] as JsDetails).error).toBe(
      'JetStream state is 3001 ms old (refreshed every 1000 ms)',
    );
    m.stop();
  });

  it('reports a consumer the bus pulls from that the server lost, from the second read on', async () => {
    const ns = namespace('hmiss');
    const b = await bus(ns, { healthRefreshMs: 60_000 });
    await b.subscribe(SUBJ, async () => undefined, { queue: 'workers' });
    const stream = `${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`;
    const names: string[] = [];
    for await (const c of jsm.consumers.list(stream)) names.push(c.name);
    const refs = [
      ...names.map((name) => ({ stream, name, group: 'workers' })),
      { stream, name: 'gone', group: 'workers' },
    ];
    const m = new JetStreamHealthMonitor(jsm, {
      streams: { ingress: stream },
      consumers: () => refs,
      refreshMs: 60_000,
      // A clock that stands still: two reads can begin within the same millisecond (a fast machine
      // did it in CI), and the second must still count the consumer missing.
      now: () => 1_000,
    });
    // First read: `gone` may be one the bus is still creating.
    await m.refresh();
    expect((await m.report()).up).toBe(true);
    await m.refresh();
    const r = await m.report();
    expect(r.up).toBe(false);
    expect((r.details['jetstream'] as JsDetails).error).toBe(
      `consumers missing on the server: ${stream}/gone`,
    );
    m.stop();
  });
});
