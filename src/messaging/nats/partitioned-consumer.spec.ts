import { Logger } from '@nestjs/common';
import type { ConsumerConfig, ConsumerInfo } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import type { BusMessage } from '../../core/message-bus.js';
import { subjectPattern } from '../../core/subjects.js';
import { MemoryPartitionLeases } from '../../sessions/memory-partition-leases.js';
import { DEFAULT_NATS_BUS_OPTIONS } from './nats-bus.options.js';
import { BusUnavailableError } from './nats-errors.js';
import { SubjectMapper } from './nats-subjects.js';
import { OutagePause } from './outage-pause.js';
import { PartitionedConsumer, type PartitionHost } from './partitioned-consumer.js';

/**
 * The partition owner against a scripted JetStream: what a real server does only by chance (a
 * restarted nats-server answering "consumer not found" for a consumer it still has, before its
 * JetStream has recovered it) happens here on cue. test/nats-bus.e2e-spec.ts and
 * test/replicas-restart.e2e-spec.ts run the owner on real servers.
 */

Logger.overrideLogger(['error']);

const STREAM = 'GREENTIC_INGRESS';
const WIRE = 'greentic.messaging.ingress.dev.acme.default.web.p0';

/** One delivery: which consumer and copy it is, and what the owner acked with it. */
class FakeMsg {
  readonly subject = WIRE;
  readonly headers = undefined;
  readonly info: { deliveryCount: number; deliverySequence: number };
  readonly data: Uint8Array;

  constructor(
    private readonly server: FakeServer,
    readonly consumer: string,
    readonly seq: number,
    private readonly body: { session: string; n: number },
    deliverySequence: number,
    deliveryCount = 1,
  ) {
    this.info = { deliveryCount, deliverySequence };
    this.data = new TextEncoder().encode(JSON.stringify(body));
  }

  json<T>(): T {
    return this.body as T;
  }

  ack(): void {
    this.server.acks.push({ consumer: this.consumer, seq: this.seq, copy: this });
  }

  ackAck(): Promise<boolean> {
    this.ack();
    return Promise.resolve(true);
  }

  working(): void {}
}

/** A consume() iterator the test feeds: messages, status notices, and close. */
class FakeMessages {
  private readonly queue: FakeMsg[] = [];
  private readonly notices: { type: string }[] = [];
  private wake?: () => void;
  private noticeWake?: () => void;
  private done = false;
  private readonly closedP: Promise<void>;
  private resolveClosed!: () => void;

  constructor() {
    this.closedP = new Promise((r) => (this.resolveClosed = r));
  }

  deliver(m: FakeMsg): void {
    this.queue.push(m);
    this.wake?.();
  }

  notify(type: string): void {
    this.notices.push({ type });
    this.noticeWake?.();
  }

  close(): Promise<void> {
    this.done = true;
    this.wake?.();
    this.noticeWake?.();
    this.resolveClosed();
    return Promise.resolve();
  }

  closed(): Promise<void> {
    return this.closedP;
  }

  async *status(): AsyncGenerator<{ type: string }> {
    for (;;) {
      const n = this.notices.shift();
      if (n) {
        yield n;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.noticeWake = r));
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<FakeMsg> {
    for (;;) {
      const m = this.queue.shift();
      if (m) {
        yield m;
        continue;
      }
      if (this.done) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }
}

/** The JetStream API surface the owner uses, over consumers the test can delete or keep. */
class FakeServer {
  readonly consumers = new Map<string, Partial<ConsumerConfig>>();
  /** Every consume() opened, newest last. */
  readonly pulls: { consumer: string; messages: FakeMessages }[] = [];
  readonly acks: { consumer: string; seq: number; copy: FakeMsg }[] = [];
  /** Each consumer's delivery sequence: the last number it gave a delivery. */
  private readonly delivered = new Map<string, number>();

  readonly jsm = {
    consumers: {
      list: (_stream: string) => this.list(),
      add: (_stream: string, cfg: Partial<ConsumerConfig>) => {
        if (!this.consumers.has(cfg.durable_name!)) this.delivered.set(cfg.durable_name!, 0);
        this.consumers.set(cfg.durable_name!, cfg);
        return Promise.resolve(this.info(cfg.durable_name!));
      },
      delete: (_stream: string, name: string) => {
        if (!this.consumers.delete(name)) return Promise.reject(new Error('consumer not found'));
        return Promise.resolve(true);
      },
      info: (_stream: string, name: string) =>
        this.consumers.has(name)
          ? Promise.resolve(this.info(name))
          : Promise.reject(new Error('consumer not found')),
    },
    streams: { info: () => Promise.resolve({ state: { last_seq: 100 } }) },
  };

  readonly js = {
    consumers: {
      get: (_stream: string, name: string) => {
        if (!this.consumers.has(name)) return Promise.reject(new Error('consumer not found'));
        return Promise.resolve({
          consume: () => {
            const messages = new FakeMessages();
            this.pulls.push({ consumer: name, messages });
            return Promise.resolve(messages);
          },
        });
      },
    },
  };

  /** The newest pull: where the server delivers now. */
  get pull(): FakeMessages {
    return this.pulls.at(-1)!.messages;
  }

  deliver(seq: number, body: { session: string; n: number }): FakeMsg {
    const consumer = this.pulls.at(-1)!.consumer;
    const m = new FakeMsg(this, consumer, seq, body, this.nextDelivery(consumer));
    this.pull.deliver(m);
    return m;
  }

  /** A delivery sent that never reaches the owner (to a pull it just closed, on a dropped connection). */
  lose(): void {
    this.nextDelivery(this.pulls.at(-1)!.consumer);
  }

  private nextDelivery(consumer: string): number {
    const d = (this.delivered.get(consumer) ?? 0) + 1;
    this.delivered.set(consumer, d);
    return d;
  }

  private info(name: string): ConsumerInfo {
    return {
      name,
      config: this.consumers.get(name),
      // AckAll: the highest sequence acked is the floor.
      ack_floor: {
        stream_seq: Math.max(0, ...this.acks.filter((a) => a.consumer === name).map((a) => a.seq)),
      },
      num_ack_pending: 0,
    } as unknown as ConsumerInfo;
  }

  private async *list(): AsyncGenerator<ConsumerInfo> {
    for (const name of [...this.consumers.keys()]) yield await Promise.resolve(this.info(name));
  }
}

const until = async (cond: () => boolean, what: string): Promise<void> => {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

/** A handler that records each run and holds the runs the test gates until it opens them. */
function gatedHandler() {
  const runs: { n: number; copy: number }[] = [];
  const gates = new Map<number, () => void>();
  const gated = new Set<number>();
  const handler = async (msg: BusMessage) => {
    const { n } = msg.data as { n: number };
    runs.push({ n, copy: runs.filter((r) => r.n === n).length + 1 });
    if (gated.has(n)) await new Promise<void>((r) => gates.set(n, r));
  };
  return {
    runs,
    handler,
    gate: (n: number) => gated.add(n),
    open: (n: number) => {
      gated.delete(n);
      gates.get(n)?.();
    },
    ran: (n: number) => runs.filter((r) => r.n === n).length,
  };
}

let owners: PartitionedConsumer[] = [];
afterEach(async () => {
  await Promise.all(owners.map((o) => o.stop()));
  owners = [];
});

async function startOwner(
  server: FakeServer,
  handler: (msg: BusMessage) => Promise<void>,
  leases = new MemoryPartitionLeases(),
  overrides: Partial<PartitionHost> = {},
) {
  const options = {
    ...DEFAULT_NATS_BUS_OPTIONS,
    partitions: 1,
    partitionLeaseMs: 400,
    ackIntervalMs: 0,
    drainTimeoutMs: 500,
  };
  const host: PartitionHost = {
    js: server.js as unknown as PartitionHost['js'],
    jsm: server.jsm as unknown as PartitionHost['jsm'],
    mapper: new SubjectMapper('', 1),
    options,
    leases,
    replica: 'r1',
    deadLetter: () => Promise.resolve(true),
    connected: () => true,
    keepPulling: () => undefined,
    backoff: () => 10,
    pause: (ms) => new Promise((r) => setTimeout(r, ms)),
    later: (send) => setImmediate(send),
    count: () => undefined,
    admit: () => Promise.resolve(() => undefined),
    orderingKey: (_subject, data) => (data as { session: string }).session,
    headerRecord: () => ({}),
    ...overrides,
  };
  const owner = new PartitionedConsumer(
    host,
    {
      stream: STREAM,
      pattern: subjectPattern('ingress'),
      queue: 'runner',
      handler,
      maxDeliver: 5,
      replaysPastLimit: false,
    },
    't',
  );
  owners.push(owner);
  const pulls = server.pulls.length;
  await owner.start();
  await until(() => server.pulls.length === pulls + 1, 'the first pull');
  return owner;
}

/** An owner on a fresh scripted server with a gated handler, and the consumer it pulls from. */
async function gatedOwner() {
  const server = new FakeServer();
  const h = gatedHandler();
  await startOwner(server, h.handler);
  return { server, h, consumer: server.pulls[0]!.consumer };
}

/** The highest sequence acknowledged (AckAll) through a copy taken from `consumer`, so far. */
const floorOf = (server: FakeServer, consumer: string) =>
  Math.max(0, ...server.acks.filter((a) => a.consumer === consumer).map((a) => a.seq));

describe('PartitionedConsumer: a consumer reported lost', () => {
  it('still runs the messages it had taken when the server finds the consumer after all, and acks none of them unrun', async () => {
    const { server, h, consumer } = await gatedOwner();

    // Session a: 1 runs (held), 2 waits behind it in its lane. Session b: 3 finishes.
    h.gate(1);
    server.deliver(1, { session: 'a', n: 1 });
    server.deliver(2, { session: 'a', n: 2 });
    server.deliver(3, { session: 'b', n: 3 });
    await until(() => h.ran(1) === 1 && h.ran(3) === 1, 'messages 1 and 3 running');

    // A restarted server answers "not found" before its JetStream has recovered the consumer.
    server.pull.notify('consumer_not_found');
    await until(() => server.pulls.length === 2, 'the pull re-opened on the same consumer');
    expect(server.pulls[1]!.consumer).toBe(consumer);

    // The re-opened pull goes on from where the server was: 4, never 2 again.
    server.deliver(4, { session: 'b', n: 4 });
    await until(() => h.ran(4) === 1, 'message 4 running');
    await new Promise((r) => setTimeout(r, 50));
    // 1 is still running: nothing at or above it may be acknowledged, or 2 would be lost.
    expect(floorOf(server, consumer)).toBe(0);

    h.open(1);
    await until(() => floorOf(server, consumer) === 4, 'the floor passing 4');
    expect(h.runs.map((r) => r.n).sort()).toEqual([1, 2, 3, 4]);
  });

  it('re-makes a consumer the server really lost, and runs what it redelivers instead of the copies taken before', async () => {
    const { server, h, consumer } = await gatedOwner();

    h.gate(1);
    server.deliver(1, { session: 'a', n: 1 });
    const old2 = server.deliver(2, { session: 'a', n: 2 });
    await until(() => h.ran(1) === 1, 'message 1 running');

    // Restarted on wiped storage: the consumer is gone.
    server.consumers.delete(consumer);
    server.pull.notify('consumer_not_found');
    await until(() => server.pulls.length === 2, 'the consumer made again');
    expect(server.consumers.get(consumer)?.deliver_policy).toBe('all');

    // The new consumer delivers everything unfinished again.
    h.open(1);
    server.deliver(1, { session: 'a', n: 1 });
    server.deliver(2, { session: 'a', n: 2 });
    await until(() => floorOf(server, consumer) === 2, 'the floor passing 2');
    await new Promise((r) => setTimeout(r, 50));

    // The old copy of 1 had started and finishes; the old copy of 2 never runs. Only copies the
    // new consumer delivered are acknowledged.
    expect(h.ran(2)).toBe(1);
    expect(h.ran(1)).toBe(2);
    expect(server.acks.some((a) => a.copy === old2)).toBe(false);
  });
});

describe('PartitionedConsumer: a delivery that never arrived', () => {
  it('takes nothing after it, acks only what it took below it, and re-opens the partition at that floor so the lost message runs', async () => {
    const { server, h, consumer } = await gatedOwner();

    server.deliver(1, { session: 'a', n: 1 });
    h.gate(2);
    server.deliver(2, { session: 'b', n: 2 });
    await until(() => h.ran(1) === 1 && h.ran(2) === 1, 'messages 1 and 2 running');
    // 3 goes to a pull the owner had just closed, or out on a connection that dropped: the server
    // counts it delivered. 4 arrives. Under AckAll an ack of 4 would acknowledge 3, unrun.
    server.lose();
    server.deliver(4, { session: 'c', n: 4 });
    // Several heartbeats (every 100 ms here) while 2 still runs: the partition is not claimed
    // again before what it took has finished and its floor is acked.
    await new Promise((r) => setTimeout(r, 350));
    expect(h.ran(4)).toBe(0);
    expect(server.pulls).toHaveLength(1);

    // What it took finishes and its floor is acked; then the partition is claimed again at a new
    // epoch whose consumer starts right above that floor.
    h.open(2);
    await until(() => server.pulls.length === 2, 'the partition re-opened');
    const reopened = server.pulls[1]!.consumer;
    expect(reopened).toMatch(/_e2$/);
    expect(server.consumers.get(reopened)).toMatchObject({
      deliver_policy: 'by_start_sequence',
      opt_start_seq: 3,
    });
    expect(server.consumers.has(consumer)).toBe(false);
    expect(floorOf(server, consumer)).toBe(2);

    server.deliver(3, { session: 'd', n: 3 });
    server.deliver(4, { session: 'c', n: 4 });
    await until(() => floorOf(server, reopened) === 4, 'the new floor passing 4');
    expect(h.runs.map((r) => r.n)).toEqual([1, 2, 3, 4]);
  });

  it('re-opens the partition too when a restarted server numbers its deliveries from older state', async () => {
    const { server, h, consumer } = await gatedOwner();

    server.deliver(1, { session: 'a', n: 1 });
    server.deliver(2, { session: 'a', n: 2 });
    await until(() => floorOf(server, consumer) === 2, 'the floor passing 2');
    // Back from a crash with its state flushed after the first delivery: it numbers the next one
    // 2 again, and may hold as delivered what was on its way when it died.
    const msg = new FakeMsg(server, consumer, 3, { session: 'a', n: 3 }, 2);
    server.pull.deliver(msg);
    await until(() => server.pulls.length === 2, 'the partition re-opened');
    expect(h.ran(3)).toBe(0);
    expect(server.consumers.get(server.pulls[1]!.consumer)).toMatchObject({ opt_start_seq: 3 });
  });
});

describe('PartitionedConsumer: taking over from another owner', () => {
  it("counts what was in the stream before it took over as a possible redelivery, whatever the server's count says", async () => {
    const server = new FakeServer();
    const leases = new MemoryPartitionLeases();
    const counts = new Map<number, number>();
    const handler = (msg: BusMessage) => {
      counts.set((msg.data as { n: number }).n, msg.deliveryCount);
      return Promise.resolve();
    };
    const first = await startOwner(server, handler, leases);
    await first.stop();
    owners = owners.filter((o) => o !== first);
    // The stream's last sequence is 100 when the second owner opens (FakeServer.jsm.streams.info).
    await startOwner(server, handler, leases);
    expect(server.pulls.at(-1)!.consumer).toMatch(/_e2$/);

    // A restarted server can deliver 50 as if for the first time though the first owner ran it.
    server.deliver(50, { session: 'a', n: 50 });
    server.deliver(101, { session: 'a', n: 101 });
    await until(() => counts.size === 2, 'both delivered');
    expect(Object.fromEntries(counts)).toEqual({ 50: 2, 101: 1 });
  });
});

describe('PartitionedConsumer: a dependency outage', () => {
  it('retries a message in place as soon as the NATS connection is back, not a backoff step later', async () => {
    const server = new FakeServer();
    const outage = new OutagePause();
    const runs: number[] = [];
    await startOwner(
      server,
      () => {
        runs.push(Date.now());
        // The first run's reply publish is lost with the connection.
        return runs.length === 1
          ? Promise.reject(
              new BusUnavailableError('publish not acknowledged: connection lost before the PubAck'),
            )
          : Promise.resolve();
      },
      undefined,
      { backoff: () => 60_000, pause: (ms) => outage.wait(ms) },
    );
    const consumer = server.pulls[0]!.consumer;
    server.deliver(1, { session: 'a', n: 1 });
    await until(() => runs.length === 1, 'the first run');
    await new Promise((r) => setTimeout(r, 100));
    expect(runs).toHaveLength(1);
    const back = Date.now();
    outage.reconnected();
    await until(() => runs.length === 2, 'the retry after the reconnect');
    expect(runs[1]! - back).toBeLessThan(1_000);
    await until(() => floorOf(server, consumer) === 1, 'the floor passing 1');
  });
});
