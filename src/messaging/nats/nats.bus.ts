import { Logger, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import {
  connect,
  headers as natsHeaders,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import {
  ConfigError,
  errorText,
  GreenticError,
  isPermanentError,
  PayloadTooLargeError,
} from '../../common/errors.js';
import type {
  BusHandler,
  BusHealth,
  BusSubscription,
  MessageBus,
  PublishAck,
  PublishOptions,
  SubscribeOptions,
} from '../../core/message-bus.js';
import { deadLetterSubject, isReplySubject, parseSubject } from '../../core/subjects.js';
import { DEFAULT_NATS_BUS_OPTIONS, type NatsBusOptions } from './nats-bus.options.js';
import { BusUnavailableError, isUnavailableError, retryAfterMs } from './nats-errors.js';
import { purgesUnackedOnRestart } from './server-version.js';
import { fnv1a } from '../../common/hash.js';
import { durableName, SubjectMapper, type StreamDirection } from './nats-subjects.js';
import { resumeAfterRestart } from './consumer-resume.js';
import { JetStreamHealthMonitor } from './nats-health.js';
import type { PartitionLeaseStore } from '../../core/partition-ownership.js';
import { MemoryPartitionLeases } from '../../sessions/memory-partition-leases.js';
import { PartitionedConsumer, type PartitionHost } from './partitioned-consumer.js';
import { TurnBatch } from './turn-batch.js';
import { OutagePause } from './outage-pause.js';
import { PubAcks, type StreamAck } from './pub-acks.js';

const DIRECTIONS: readonly StreamDirection[] = ['ingress', 'egress', 'dlq'];
const NOT_DUPLICATE: PublishAck = Object.freeze({ duplicate: false });
const DUPLICATE: PublishAck = Object.freeze({ duplicate: true });
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One durable pull consumer this process pulls from. */
interface PullLoop {
  name: string;
  filter: string;
  /** 1 for partitions (per-session order), larger for the unordered dead-letter stream. */
  maxAckPending: number;
  /** Repartitioners move messages that arrived without a partition token; they never call the handler. */
  repartition: boolean;
  messages?: ConsumerMessages;
}

interface StreamSub {
  pattern: string;
  queue: string;
  stream: string;
  handler: BusHandler;
  maxDeliver: number;
  replaysPastLimit: boolean;
  /** Shared pulls: the repartitioner of a partitioned direction, or the whole of an unpartitioned one. */
  loops: PullLoop[];
  /** The partitions this replica owns, for a partitioned direction. */
  owners?: PartitionedConsumer;
  inflight: Set<Promise<void>>;
  stopped: boolean;
}

interface CoreSub {
  sub: Subscription;
  inflight: Set<Promise<void>>;
}

/**
 * The production bus: JetStream streams for ingress, egress and dead letters, created or updated
 * at start-up. Publishing to a stream subject waits for the PubAck (so a webhook is answered only
 * once the message is durable) and de-duplicates on `Nats-Msg-Id`.
 *
 * A subscription with a `queue` on ingress or egress is consumed by partition owners
 * (PartitionedConsumer): each partition belongs to one replica at a time, which pulls it in batches
 * and runs its sessions concurrently, each session's messages one at a time in order. The
 * handler's success acks; a failure is retried within its session with backoff; a permanent error,
 * or the last allowed attempt, dead-letters and terms. A subscription without a queue is a plain
 * core NATS subscription (a replica's own reply subject).
 */
export class NatsBus implements MessageBus, OnModuleDestroy, OnApplicationShutdown {
  readonly kind = 'nats';
  private readonly logger = new Logger(NatsBus.name);
  readonly mapper: SubjectMapper;
  private readonly streams: Record<StreamDirection, string>;
  private readonly streamSubs: StreamSub[] = [];
  private readonly coreSubs = new Set<CoreSub>();
  private connected = true;
  private closed = false;
  private draining?: Promise<void>;
  private closing?: Promise<void>;
  /** Stream and consumer state read in the background; started by the first health probe. */
  private jetstreamHealth?: JetStreamHealthMonitor;
  private reEnsuring?: Promise<void>;
  /** Set while the server is one that loses unacknowledged interest messages on a restart (see ensureStreams). */
  private restartWarning?: string;
  private readonly counters = {
    published: 0,
    /** Publishes JetStream dropped as repeats of an id inside its duplicate window. */
    duplicates: 0,
    acked: 0,
    naked: 0,
    deadLettered: 0,
    repartitioned: 0,
    /** Failed attempts retried within their session by a partition owner. */
    retried: 0,
    /** Partitions re-opened at their ack floor because a delivery never arrived (OwnedPartition.follows). */
    reopened: 0,
    /** Most messages this replica's partition owners held at once (running or queued in a session). */
    peakInflight: 0,
    /** Most handlers this replica's partition owners ran at once (all sessions, all partitions). */
    peakRunning: 0,
  };
  /** Handlers of partition owners running now. */
  private running = 0;
  /** Publishes and acks of one event-loop turn, written together. */
  private readonly batch = new TurnBatch();
  /** The PubAcks of this bus's stream publishes, on one inbox. */
  private readonly acks: PubAcks;
  /** In-place retries of an outage, woken when the connection is back. */
  private readonly outage = new OutagePause();

  /** Messages taken by partition owners and not finished, against `options.maxInflight`. */
  private admitted = 0;
  private readonly admissionQueue: (() => void)[] = [];

  private constructor(
    private readonly nc: NatsConnection,
    readonly jsm: JetStreamManager,
    readonly js: JetStreamClient,
    readonly options: NatsBusOptions,
    readonly leases: PartitionLeaseStore,
  ) {
    this.mapper = new SubjectMapper(options.subjectPrefix, options.partitions);
    this.acks = new PubAcks(nc, options.publishTimeoutMs);
    this.streams = {
      ingress: `${options.streamPrefix}_INGRESS`,
      egress: `${options.streamPrefix}_EGRESS`,
      dlq: `${options.streamPrefix}_DLQ`,
    };
    void this.watchConnection();
  }

  /** Connects, then creates or updates the streams. Fails with a message naming the server when it cannot. */
  static async connect(
    partial: Partial<NatsBusOptions> = {},
    leases: PartitionLeaseStore = new MemoryPartitionLeases(),
  ): Promise<NatsBus> {
    const options: NatsBusOptions = { ...DEFAULT_NATS_BUS_OPTIONS, ...partial };
    validateOptions(options);
    let nc: NatsConnection;
    try {
      nc = await connect({
        servers: options.servers.split(',').map((s) => s.trim()),
        name: options.name,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 10_000,
        timeout: 5_000,
        // A stack capture per request (every JetStream publish) costs more than the publish.
        noAsyncTraces: true,
      });
    } catch (e) {
      throw new BusUnavailableError(`cannot connect to NATS at ${options.servers}: ${(e as Error).message}`, {
        servers: options.servers,
      });
    }
    try {
      const jsm = await jetstreamManager(nc, { timeout: options.publishTimeoutMs });
      const bus = new NatsBus(nc, jsm, jetstream(nc, { timeout: options.publishTimeoutMs }), options, leases);
      await bus.ensureStreams();
      return bus;
    } catch (e) {
      await nc.close().catch(() => undefined);
      if (e instanceof GreenticError) throw e;
      throw new BusUnavailableError(
        `NATS at ${options.servers} has no usable JetStream: ${(e as Error).message}`,
        { servers: options.servers },
      );
    }
  }

  async publish(subject: string, data: unknown, opts: PublishOptions = {}): Promise<PublishAck> {
    if (this.closed) throw new BusUnavailableError('bus is closed');
    const dir = this.mapper.direction(subject);
    // On egress the waiting replica rides in the wire subject (it reads it with a core
    // subscription); anywhere else the reply subject gets its own publish.
    const wire = this.mapper.toWire(subject, orderingKey(subject, data), opts.replyTo);
    const payload = encoder.encode(JSON.stringify(data));
    // Too large is not an outage: refuse it as bad input instead of retrying it forever.
    const max = this.nc.info?.max_payload;
    if (max !== undefined && payload.length > max) throw new PayloadTooLargeError(max);
    const h = natsHeaders();
    // A record's keys are distinct and the headers start empty, so append is set without its
    // lookups for an earlier value.
    for (const [k, v] of Object.entries(opts.headers ?? {})) h.append(k, v);
    if (opts.replyTo !== undefined && dir !== 'egress') {
      const to = this.mapper.toWire(opts.replyTo, opts.replyTo);
      this.batch.add(() => this.nc.publish(to, payload, { headers: h }));
    }
    if (dir === undefined) {
      this.batch.add(() => this.nc.publish(wire, payload, { headers: h }));
      this.counters.published++;
      return NOT_DUPLICATE;
    }
    // De-duplication is per stream; scoping the id by subject keeps two tenants (or channels)
    // whose platforms reuse an id (Telegram's update_id counts from 1) from dropping each other.
    // Messages' ids come scoped by session already (messageDedupeId).
    if (opts.msgId !== undefined) h.set('Nats-Msg-Id', `${subject}|${opts.msgId}`);
    let ack: StreamAck;
    try {
      ack = await this.batch.run(() => this.acks.publish(wire, payload, h));
    } catch (e) {
      throw new BusUnavailableError(`publish to ${subject} was not acknowledged: ${(e as Error).message}`, {
        subject,
      });
    }
    // The server answers a repeat inside its duplicate window with the first copy's sequence.
    if (ack.duplicate) {
      this.counters.duplicates++;
      return DUPLICATE;
    }
    this.counters.published++;
    return NOT_DUPLICATE;
  }

  async subscribe<T>(
    pattern: string,
    handler: BusHandler<T>,
    opts: SubscribeOptions = {},
  ): Promise<BusSubscription> {
    if (this.closed) throw new BusUnavailableError('bus is closed');
    const dir = this.mapper.direction(pattern);
    if (opts.queue === undefined || dir === undefined)
      return this.subscribeCore(pattern, handler as BusHandler, opts.queue);
    const partitioned = this.mapper.partitioned(dir);
    const tag = fnv1a(pattern).toString(36);
    const loops: PullLoop[] = partitioned
      ? [
          {
            // Messages published straight to NATS without a partition token: any replica moves them.
            name: durableName(opts.queue, tag, 'unpartitioned'),
            filter: this.mapper.unpartitionedFilter(pattern),
            maxAckPending: 64,
            repartition: true,
          },
        ]
      : [
          {
            name: durableName(opts.queue, tag, 'all'),
            filter: this.mapper.plainFilter(pattern),
            maxAckPending: 256,
            repartition: false,
          },
        ];
    const sub: StreamSub = {
      pattern,
      queue: opts.queue,
      stream: this.streams[dir],
      handler: handler as BusHandler,
      maxDeliver: opts.maxDeliver ?? this.options.maxDeliver,
      replaysPastLimit: opts.replaysPastLimit === true,
      loops,
      inflight: new Set(),
      stopped: false,
    };
    await Promise.all(loops.map((l) => this.ensureConsumer(sub.stream, l)));
    if (partitioned) {
      if (!this.leases.shared)
        this.logger.warn(
          { queue: opts.queue, pattern },
          'partition leases are in this process (sessions in memory): run one replica only, or set GREENTIC_SESSIONS=redis',
        );
      sub.owners = new PartitionedConsumer(
        this.partitionHost(),
        {
          stream: sub.stream,
          pattern,
          queue: opts.queue,
          handler: sub.handler,
          maxDeliver: sub.maxDeliver,
          replaysPastLimit: sub.replaysPastLimit,
        },
        tag,
      );
      await sub.owners.start();
    }
    this.streamSubs.push(sub);
    for (const l of loops) void this.pull(sub, l);
    return {
      unsubscribe: async () => {
        await this.stopPulling(sub);
        await sub.owners?.stop();
        await settle(sub.inflight, this.options.drainTimeoutMs);
        const i = this.streamSubs.indexOf(sub);
        if (i >= 0) this.streamSubs.splice(i, 1);
      },
    };
  }

  /** Answers from memory: connection state is live, stream and consumer state a background snapshot. */
  async health(): Promise<BusHealth> {
    const up = this.connected && !this.closed && !this.nc.isClosed();
    const details: Record<string, unknown> = {
      kind: this.kind,
      connected: this.connected && !this.closed,
      server: this.nc.getServer(),
      serverVersion: this.nc.info?.version,
      ...(this.restartWarning ? { warning: this.restartWarning } : {}),
      partitions: this.options.partitions,
      replica: this.options.replica,
      // The partitions this replica owns now, per consumer group, with their epochs.
      owned: this.ownership(),
      // Messages and bytes this connection sent and received (publishes, acks, pulls, replies).
      traffic: this.nc.stats(),
      ...this.counters,
    };
    if (up && !this.jetstreamHealth) {
      this.jetstreamHealth = new JetStreamHealthMonitor(
        this.jsm,
        {
          streams: this.streams,
          // Lag per subscription over all its queue group's consumers (every replica's); the ones
          // this replica pulls from by name, so one the server lost reads as down.
          consumers: () =>
            this.streamSubs.flatMap((s) => {
              const group = `${s.queue} ${s.pattern}`;
              const prefix = `${durableName(s.queue, fnv1a(s.pattern).toString(36))}_`;
              return [
                { stream: s.stream, group, prefix },
                ...s.loops.map((l) => ({ stream: s.stream, group, name: l.name })),
              ];
            }),
          refreshMs: this.options.healthRefreshMs,
        },
        this.logger,
      );
      this.jetstreamHealth.start();
    }
    const js = await this.jetstreamHealth?.report();
    return { up: up && js?.up === true, details: { ...details, ...js?.details } };
  }

  /**
   * First half of a graceful stop: pull nothing more, let in-flight handlers finish and ack (bounded
   * by the drain timeout; what is left is redelivered elsewhere). The connection stays open for
   * the replies and acks those handlers still send, and for the ReplyWaiter.
   */
  drain(): Promise<void> {
    this.draining ??= (async () => {
      const inflight = this.streamSubs.reduce((n, s) => n + s.inflight.size + (s.owners?.inflight ?? 0), 0);
      this.logger.log(
        { subscriptions: this.streamSubs.length, inflight },
        'draining: stopped pulling, finishing in-flight messages',
      );
      await Promise.all(this.streamSubs.map((s) => this.stopPulling(s)));
      const all = new Set(this.streamSubs.flatMap((s) => [...s.inflight]));
      // Partition owners finish what they took, give their partitions back and leave their groups.
      for (const s of this.streamSubs) if (s.owners) all.add(s.owners.stop());
      const t0 = Date.now();
      const finished = await settle(all, this.options.drainTimeoutMs);
      if (finished)
        this.logger.log(
          { inflight, ms: Date.now() - t0, acked: this.counters.acked },
          'drained: in-flight messages finished and acked',
        );
      else
        this.logger.warn(
          { timeoutMs: this.options.drainTimeoutMs },
          'drain timed out; unfinished messages will be redelivered',
        );
      if (!this.nc.isClosed()) await withTimeout(this.nc.flush(), 2_000, 'flush').catch(() => undefined);
    })();
    return this.draining;
  }

  async close(): Promise<void> {
    this.closing ??= (async () => {
      await this.drain();
      this.closed = true;
      for (const c of this.coreSubs) c.sub.unsubscribe();
      await settle(new Set([...this.coreSubs].flatMap((c) => [...c.inflight])), 2_000);
      this.coreSubs.clear();
      if (!this.nc.isClosed()) {
        await withTimeout(this.nc.drain(), 5_000, 'connection drain').catch(async () => {
          await this.nc.close().catch(() => undefined);
        });
      }
      this.acks.close();
      this.logger.log({ ...this.counters }, 'NATS bus closed');
    })();
    return this.closing;
  }

  /** Runs before other modules tear down (MessagingModule is destroyed before what it depends on). */
  onModuleDestroy(): Promise<void> {
    return this.drain();
  }

  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------------------------------------

  private async subscribeCore(
    pattern: string,
    handler: BusHandler,
    queue?: string,
  ): Promise<BusSubscription> {
    const subs: CoreSub[] = [this.coreSub(this.mapper.corePattern(pattern), pattern, handler, queue)];
    // A replica's reply subject: its waiting callers' replies come as the egress publishes naming it.
    if (isReplySubject(pattern))
      subs.push(this.coreSub(this.mapper.awaitedEgressPattern(pattern), pattern, handler, queue));
    // The server knows the subscription once a round trip has passed: a subscriber's own
    // publish (or another connection's) right after subscribe() must reach it.
    // While disconnected the SUB waits in the reconnect buffer: subscribe() does not fail for that.
    await withTimeout(this.nc.flush(), 5_000, 'flush').catch(() => undefined);
    return {
      unsubscribe: async () => {
        for (const entry of subs) {
          if (!entry.sub.isClosed()) entry.sub.unsubscribe();
          await settle(entry.inflight, 2_000);
          this.coreSubs.delete(entry);
        }
      },
    };
  }

  private coreSub(wire: string, pattern: string, handler: BusHandler, queue?: string): CoreSub {
    const entry: CoreSub = { sub: undefined as unknown as Subscription, inflight: new Set() };
    entry.sub = this.nc.subscribe(wire, {
      ...(queue !== undefined ? { queue } : {}),
      callback: (err, m) => {
        if (err) {
          this.logger.warn({ pattern, err: err.message }, 'subscription error');
          return;
        }
        const subject = this.mapper.fromWire(m.subject);
        let data: unknown;
        try {
          data = m.json();
        } catch {
          this.logger.warn({ subject }, 'dropped a message that is not JSON');
          return;
        }
        const p = handler({ subject, data, headers: headerRecord(m.headers), deliveryCount: 1 }).catch(
          (e: unknown) => {
            this.logger.warn(
              { subject, tenant: parseSubject(subject)?.tenant, err: (e as Error).message },
              'subscriber failed',
            );
          },
        );
        entry.inflight.add(p);
        void p.finally(() => entry.inflight.delete(p));
      },
    });
    this.coreSubs.add(entry);
    return entry;
  }

  /** Pulls one durable consumer until the subscription stops; survives reconnects and lost consumers. */
  private async pull(sub: StreamSub, loop: PullLoop): Promise<void> {
    while (!sub.stopped && !this.closed) {
      try {
        const consumer = await this.js.consumers.get(sub.stream, loop.name);
        // A pull asks for up to 16 even where one message at a time is in flight (max_ack_pending
        // 1): the server hands them out one ack at a time under the same pull, so the client
        // issues a pull request every dozen messages rather than every message.
        const messages = await consumer.consume({
          max_messages: Math.max(16, Math.min(loop.maxAckPending, 64)),
        });
        loop.messages = messages;
        void this.watchConsumer(messages, sub, loop);
        if (sub.stopped) await messages.close();
        for await (const m of messages) {
          if (sub.stopped) {
            // Pulled after the stop: hand it straight back so another replica takes it now, not after ack_wait.
            m.nak();
            continue;
          }
          const p = loop.repartition ? this.repartition(sub, m) : this.handle(sub, m);
          sub.inflight.add(p);
          try {
            await p;
          } finally {
            sub.inflight.delete(p);
          }
        }
      } catch (e) {
        if (sub.stopped || this.closed) return;
        this.logger.warn(
          { consumer: loop.name, err: (e as Error).message },
          'pull consumer interrupted; retrying',
        );
        await sleep(1_000);
        await this.ensureConsumer(sub.stream, loop).catch(() => undefined);
      }
    }
  }

  private async handle(sub: StreamSub, m: JsMsg): Promise<void> {
    const subject = this.mapper.fromWire(m.subject);
    const headers = headerRecord(m.headers);
    const deliveryCount = m.info.deliveryCount;
    let data: unknown;
    try {
      data = m.json();
    } catch (e) {
      return this.deadLetter(m, subject, headers, decoder.decode(m.data), {
        code: 'malformed_json',
        message: (e as Error).message,
      });
    }
    const pastLimit = deliveryCount > sub.maxDeliver;
    if (pastLimit && !sub.replaysPastLimit) {
      // The last allowed delivery never finished (its replica stopped mid-flow): no more attempts.
      return this.deadLetter(m, subject, headers, data, {
        code: 'max_deliveries',
        message: `delivered ${deliveryCount} times without success`,
      });
    }
    const beat = setInterval(() => m.working(), Math.max(200, Math.floor(this.options.ackWaitMs / 3)));
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await sub.handler({ subject, data, headers, deliveryCount, pastLimit });
          break;
        } catch (err) {
          if (!isUnavailableError(err) || sub.stopped || this.closed) throw err;
          const delay = this.backoff(attempt, err);
          if (attempt === 1 || attempt % 10 === 0) {
            this.logger.warn(
              {
                subject,
                tenant: parseSubject(subject)?.tenant,
                attempt,
                retryInMs: delay,
                err: errorText(err),
              },
              'dependency unavailable; retrying the message in place',
            );
          }
          await this.outage.wait(delay);
        }
      }
      m.ack();
      this.counters.acked++;
    } catch (err) {
      if (isUnavailableError(err)) {
        // Stopping while a dependency is down: give the message back at once for another replica.
        m.nak();
        this.counters.naked++;
        return;
      }
      const permanent = isPermanentError(err);
      if (permanent || deliveryCount >= sub.maxDeliver) {
        const code = err instanceof GreenticError ? err.code : 'handler_failed';
        return this.deadLetter(m, subject, headers, data, {
          code,
          message: errorText(err),
        });
      }
      const delay = this.backoff(deliveryCount, err);
      this.logger.warn(
        {
          subject,
          tenant: parseSubject(subject)?.tenant,
          attempt: deliveryCount,
          retryInMs: delay,
          err: errorText(err),
        },
        'message failed; redelivering with backoff',
      );
      m.nak(delay);
      this.counters.naked++;
    } finally {
      clearInterval(beat);
    }
  }

  /** Moves a message that was published without a partition token onto its partition, keeping its id. */
  private async repartition(sub: StreamSub, m: JsMsg): Promise<void> {
    const subject = this.mapper.fromWire(m.subject);
    let data: unknown;
    try {
      data = m.json();
    } catch (e) {
      return this.deadLetter(m, subject, headerRecord(m.headers), decoder.decode(m.data), {
        code: 'malformed_json',
        message: (e as Error).message,
      });
    }
    const h = natsHeaders();
    const src = m.headers;
    if (src) for (const k of src.keys()) if (k !== 'Nats-Msg-Id') h.set(k, src.get(k));
    // De-duplication is per stream: the copy needs its own id, derived so that a second
    // repartitioner (another queue group) publishing the same copy is dropped.
    h.set('Nats-Msg-Id', `rp:${src?.get('Nats-Msg-Id') || `${sub.stream}:${m.seq}`}`);
    try {
      // Through PubAcks like every stream publish: across a dropped connection it fails at once
      // or is held until the reconnect, instead of waiting out its timeout.
      await this.acks.publish(this.mapper.toWire(subject, orderingKey(subject, data)), m.data, h);
      m.ack();
      this.counters.repartitioned++;
    } catch (e) {
      this.logger.warn({ subject, err: (e as Error).message }, 'repartition publish failed; retrying');
      m.nak(this.backoff(m.info.deliveryCount, e));
    }
  }

  private async deadLetter(
    m: JsMsg,
    subject: string,
    headers: Record<string, string>,
    data: unknown,
    error: { code: string; message: string },
    deliveries = m.info.deliveryCount,
  ): Promise<void> {
    if (await this.publishDeadLetter(m, subject, headers, data, error, deliveries)) m.term();
    else m.nak(this.backoff(m.info.deliveryCount, undefined));
  }

  /**
   * Publishes `m` to its tenant's dead-letter subject (its id derived from the stream sequence, so a
   * replay publishes it once). True once it is there, or when it cannot go anywhere (not an ingress
   * or egress subject): either way it is done with. False when the publish failed.
   */
  private async publishDeadLetter(
    m: JsMsg,
    subject: string,
    headers: Record<string, string>,
    data: unknown,
    error: { code: string; message: string },
    deliveries = m.info.deliveryCount,
  ): Promise<boolean> {
    const parts = parseSubject(subject);
    const log = {
      subject,
      tenant: parts?.tenant,
      deliveries,
      code: error.code,
      reason: error.message,
    };
    if (!parts || (parts.direction !== 'ingress' && parts.direction !== 'egress')) {
      this.logger.error(log, 'message cannot be processed nor dead-lettered; terminated');
      return true;
    }
    const dlq = deadLetterSubject(parts.env, parts.tenant, parts.team, parts.channel);
    try {
      await this.publish(
        dlq,
        { subject, error, deliveries, data },
        {
          msgId: `${m.info.stream}:${m.seq}`,
          headers: { ...headers, 'greentic-error': error.code, 'greentic-original-subject': subject },
        },
      );
    } catch (e) {
      this.logger.warn({ ...log, err: (e as Error).message }, 'dead-letter publish failed; will retry');
      return false;
    }
    this.counters.deadLettered++;
    this.logger.error({ ...log, dlq }, 'message dead-lettered');
    return true;
  }

  /** The partitions this replica owns, per consumer group. */
  ownership(): Record<string, { partition: number; epoch: number }[]> {
    const out: Record<string, { partition: number; epoch: number }[]> = {};
    for (const s of this.streamSubs) if (s.owners) out[s.owners.group] = s.owners.ownership();
    return out;
  }

  private partitionHost(): PartitionHost {
    return {
      js: this.js,
      jsm: this.jsm,
      mapper: this.mapper,
      options: this.options,
      leases: this.leases,
      replica: this.options.replica,
      deadLetter: (m, subject, headers, data, error, deliveries) =>
        this.publishDeadLetter(m, subject, headers, data, error, deliveries),
      connected: () => this.connected && !this.closed,
      keepPulling: (messages, name) => {
        // Whether to re-create a lost consumer is the partition owner's call (its lease may be gone).
        resumeAfterRestart(this.nc, messages, {
          name,
          recreate: () => Promise.resolve(),
          logger: this.logger,
        });
      },
      backoff: (attempt, err) => this.backoff(attempt, err),
      pause: (ms) => this.outage.wait(ms),
      later: (send) => this.batch.add(send),
      count: (what) => {
        if (what === 'running') {
          if (++this.running > this.counters.peakRunning) this.counters.peakRunning = this.running;
        } else if (what === 'finished') this.running--;
        else this.counters[what]++;
      },
      admit: () => this.admit(),
      orderingKey,
      headerRecord: (m) => headerRecord(m.headers),
    };
  }

  /** Room for one more message under the replica's in-flight limit (all partitions together). */
  private admit(): Promise<() => void> {
    const release = () => {
      this.admitted--;
      this.admissionQueue.shift()?.();
    };
    const admit = () => {
      if (++this.admitted > this.counters.peakInflight) this.counters.peakInflight = this.admitted;
      return release;
    };
    if (this.admitted < this.options.maxInflight) return Promise.resolve(admit());
    return new Promise((resolve) => this.admissionQueue.push(() => resolve(admit())));
  }

  private backoff(attempt: number, err: unknown): number {
    const exp = this.options.backoffBaseMs * 2 ** Math.max(0, attempt - 1);
    return Math.min(this.options.backoffMaxMs, Math.max(exp, retryAfterMs(err) ?? 0));
  }

  private async stopPulling(sub: StreamSub): Promise<void> {
    sub.stopped = true;
    await Promise.all(
      sub.loops.map((l) =>
        l.messages
          ? withTimeout(l.messages.close(), 2_000, 'consumer close').catch(() => undefined)
          : undefined,
      ),
    );
  }

  private async ensureStreams(): Promise<void> {
    const o = this.options;
    const interest: string[] = [];
    for (const dir of DIRECTIONS) {
      const name = this.streams[dir];
      // Dead letters have no consumer by default: interest retention would drop them on arrival.
      const retention = dir === 'dlq' ? RetentionPolicy.Limits : (o.retention as RetentionPolicy);
      const want: Partial<StreamConfig> & { name: string } = {
        name,
        subjects: [this.mapper.streamSubject(dir)],
        retention,
        storage: o.storage === 'memory' ? StorageType.Memory : StorageType.File,
        max_age: nanos((dir === 'dlq' ? o.dlqMaxAgeSeconds : o.maxAgeSeconds) * 1000),
        num_replicas: o.replicas,
        duplicate_window: nanos(o.duplicateWindowSeconds * 1000),
        discard: DiscardPolicy.Old,
      };
      let existing: StreamConfig | undefined;
      try {
        existing = (await this.jsm.streams.info(name)).config;
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      if (!existing) {
        try {
          await this.jsm.streams.add(want);
          this.logger.log({ stream: name, subjects: want.subjects, retention }, 'stream created');
          if (retention === RetentionPolicy.Interest) interest.push(name);
          continue;
        } catch (e) {
          // Another replica created it first: fall through to the update with its config.
          existing = (
            await this.jsm.streams.info(name).catch(() => {
              throw e;
            })
          ).config;
        }
      }
      if (existing.retention === RetentionPolicy.Interest) interest.push(name);
      if (existing.retention !== want.retention || existing.storage !== want.storage) {
        this.logger.warn(
          {
            stream: name,
            retention: existing.retention,
            storage: existing.storage,
            wanted: { retention, storage: want.storage },
          },
          'stream retention/storage cannot change in place; keeping the existing stream (recreate it to apply)',
        );
      }
      const changed =
        existing.max_age !== want.max_age ||
        existing.num_replicas !== want.num_replicas ||
        existing.duplicate_window !== want.duplicate_window ||
        JSON.stringify(existing.subjects) !== JSON.stringify(want.subjects);
      if (changed) {
        await this.jsm.streams.update(name, {
          subjects: want.subjects,
          max_age: want.max_age,
          num_replicas: want.num_replicas,
          duplicate_window: want.duplicate_window,
        });
        this.logger.log({ stream: name }, 'stream updated from config');
      }
    }
    const version = this.nc.info?.version;
    this.restartWarning = undefined;
    if (interest.length > 0 && purgesUnackedOnRestart(version)) {
      this.restartWarning = `nats-server ${version} deletes unacknowledged messages of ${interest.join(', ')} when it restarts (fixed in 2.9.16): upgrade it, or use GREENTIC_NATS_RETENTION=limits for new streams`;
      this.logger.error({ server: this.nc.getServer(), version, streams: interest }, this.restartWarning);
    }
  }

  private async ensureConsumer(stream: string, loop: PullLoop): Promise<void> {
    const cfg: Partial<ConsumerConfig> = {
      durable_name: loop.name,
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(this.options.ackWaitMs),
      // Deliveries are counted here, not by the server: a server-side limit would silently stop
      // redelivering a message whose last attempt died with its replica, instead of dead-lettering it.
      max_deliver: -1,
      max_ack_pending: loop.maxAckPending,
      filter_subject: loop.filter,
      deliver_policy: DeliverPolicy.All,
    };
    try {
      await this.jsm.consumers.add(stream, cfg);
    } catch (e) {
      const info = await this.jsm.consumers.info(stream, loop.name).catch(() => {
        throw e;
      });
      if (info.config.filter_subject !== loop.filter) {
        throw new ConfigError(
          `consumer ${stream}/${loop.name} filters '${info.config.filter_subject}', expected '${loop.filter}'`,
        );
      }
      await this.jsm.consumers.update(stream, loop.name, {
        ack_wait: cfg.ack_wait,
        max_deliver: cfg.max_deliver,
        max_ack_pending: cfg.max_ack_pending,
      });
    }
  }

  /** Re-creates streams and consumers after a reconnect, in case the server lost them (memory storage). */
  private reEnsure(): Promise<void> {
    this.reEnsuring ??= (async () => {
      try {
        await this.ensureStreams();
        for (const sub of this.streamSubs) {
          for (const l of sub.loops) await this.ensureConsumer(sub.stream, l);
          await sub.owners?.verify();
        }
      } catch (e) {
        this.logger.warn({ err: (e as Error).message }, 'could not re-create streams/consumers yet');
      } finally {
        this.reEnsuring = undefined;
      }
    })();
    return this.reEnsuring;
  }

  private async watchConnection(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false;
        for (const sub of this.streamSubs) sub.owners?.connectionLost();
        this.logger.warn({ server: s.server }, 'NATS disconnected; reconnecting');
      } else if (s.type === 'reconnect') {
        this.connected = true;
        this.outage.reconnected();
        this.jetstreamHealth?.refreshSoon();
        this.logger.log({ server: s.server }, 'NATS reconnected');
        if (!this.closed) void this.reEnsure();
      } else if (s.type === 'close') {
        this.connected = false;
        this.jetstreamHealth?.stop();
      }
    }
    this.jetstreamHealth?.stop();
  }

  /** Re-creates a lost consumer and keeps the iterator pulling across server restarts. */
  private async watchConsumer(messages: ConsumerMessages, sub: StreamSub, loop: PullLoop): Promise<void> {
    // Closing the iterator makes pull() open a fresh one, which pulls at once.
    resumeAfterRestart(this.nc, messages, {
      name: loop.name,
      recreate: () => (sub.stopped ? Promise.resolve() : this.reEnsure()),
      logger: this.logger,
    });
  }
}

function validateOptions(o: NatsBusOptions): void {
  if (o.duplicateWindowSeconds > o.maxAgeSeconds) {
    throw new ConfigError(
      `GREENTIC_NATS_DUPLICATE_WINDOW_S=${o.duplicateWindowSeconds} must not exceed GREENTIC_NATS_MAX_AGE_S=${o.maxAgeSeconds}`,
      { keys: ['GREENTIC_NATS_DUPLICATE_WINDOW_S'] },
    );
  }
  if (!/^[A-Za-z0-9_-]+$/.test(o.streamPrefix)) {
    throw new ConfigError(
      `GREENTIC_NATS_STREAM_PREFIX='${o.streamPrefix}' may hold letters, digits, '_' and '-' only`,
      {
        keys: ['GREENTIC_NATS_STREAM_PREFIX'],
      },
    );
  }
}

/** A session's messages share a partition; anything else is ordered per subject. */
function orderingKey(subject: string, data: unknown): string {
  if (data && typeof data === 'object' && typeof (data as { sessionKey?: unknown }).sessionKey === 'string') {
    return (data as { sessionKey: string }).sessionKey;
  }
  return subject;
}

function headerRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  // Entries, not keys() then get(k): get looks every key up again through a filtered copy of keys().
  for (const [k, values] of h) if (values[0] !== undefined) out[k] = values[0];
  return out;
}

function nanos(ms: number): number {
  return ms * 1_000_000;
}

function isNotFound(e: unknown): boolean {
  return /not found/i.test((e as Error)?.message ?? '');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/**
 * Waits until every promise in `work` has settled, including ones added to it meanwhile (a live
 * in-flight set); false if the deadline passed first. Settled promises are dropped from `work` as
 * each round ends: a set that nothing removes them from (a snapshot) would otherwise be waited on
 * again at once, round after round, a microtask loop that held the event loop for the whole
 * drain timeout (25 s of a busy core at every graceful stop, then a false "drain timed out").
 */
async function settle(work: Set<Promise<void>>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (work.size > 0) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const round = [...work];
    const settled = await withTimeout(Promise.allSettled(round), left, 'drain').then(
      () => true,
      () => false,
    );
    if (!settled) return false;
    for (const p of round) work.delete(p);
  }
  return true;
}
