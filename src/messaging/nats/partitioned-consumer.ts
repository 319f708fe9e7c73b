import { Logger } from '@nestjs/common';
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerConfig,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { errorText, GreenticError, OwnershipLostError } from '../../common/errors.js';
import { KeyedLanes } from '../../common/keyed-lanes.js';
import type { BusHandler } from '../../core/message-bus.js';
import { fairShare, type OwnershipFence, type PartitionLeaseStore } from '../../core/partition-ownership.js';
import { parseSubject } from '../../core/subjects.js';
import type { NatsBusOptions } from './nats-bus.options.js';
import { AckFloor } from './ack-floor.js';
import { listConsumers } from './consumer-list.js';
import { isPermanentError } from '../../common/errors.js';
import { isUnavailableError } from './nats-errors.js';
import { durableName, type SubjectMapper } from './nats-subjects.js';

/** What a partitioned consumer needs of its bus. */
export interface PartitionHost {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly mapper: SubjectMapper;
  readonly options: NatsBusOptions;
  readonly leases: PartitionLeaseStore;
  /** This replica's id: its lease tokens and reply subject carry it. */
  readonly replica: string;
  /**
   * Publishes `m` to its dead-letter stream; true once it is there (or cannot go anywhere), and
   * the message then counts as finished. It neither acks nor terminates `m`: under AckAll either
   * would acknowledge the partition's unfinished messages below it too.
   */
  deadLetter(
    m: JsMsg,
    subject: string,
    headers: Record<string, string>,
    data: unknown,
    error: { code: string; message: string },
    deliveries?: number,
  ): Promise<boolean>;
  /** Whether the NATS connection is up: a replica cut off from NATS stops renewing its leases. */
  connected(): boolean;
  /** Closes `messages` when it stalls after a server restart, so the pull loop opens a fresh one. */
  keepPulling(messages: ConsumerMessages, name: string): void;
  backoff(attempt: number, err: unknown): number;
  /** Waits `ms` before an in-place retry of an outage; a NATS reconnect ends it early (OutagePause). */
  pause(ms: number): Promise<void>;
  /** Sends at the end of this event-loop turn, with the turn's other publishes and acks. */
  later(send: () => void): void;
  /** Bus counters: acked, retried, partitions reopened, and handlers running (`running`/`finished`). */
  count(what: 'acked' | 'retried' | 'reopened' | 'running' | 'finished'): void;
  /** Waits for room under the replica's in-flight limit; returns the release. */
  admit(): Promise<() => void>;
  /** The ordering key of a delivered message (its session key). */
  orderingKey(subject: string, data: unknown): string;
  headerRecord(m: JsMsg): Record<string, string>;
}

export interface PartitionedSubscription {
  stream: string;
  pattern: string;
  queue: string;
  handler: BusHandler;
  maxDeliver: number;
  /** Past `maxDeliver`, hand the message to the handler once more, marked (SubscribeOptions). */
  replaysPastLimit: boolean;
}

const CONSUMER_EPOCH = /_e(\d+)$/;

/**
 * One queue group's consumption of a partitioned direction (ingress, or one provider's egress) by
 * partition owners. Each replica heartbeats the group's leases; the partitions it should own are
 * its fair share of the live members (rendezvous hashing). It claims a partition with a new epoch,
 * then consumes it through a durable consumer of its own (`{group}_p{N}_e{epoch}`) that starts at
 * the previous owner's ack floor, so the unfinished tail is replayed in order; the previous
 * owner's consumer is deleted, and with it any pull that stale owner still has open. Inside a
 * partition, messages run in lanes per session: one at a time per session, sessions concurrently.
 */
export class PartitionedConsumer {
  private readonly logger = new Logger('NatsBus');
  readonly group: string;
  private readonly owned = new Map<number, OwnedPartition>();
  /** Handed over, finishing what they took: their leases are still renewed until released. */
  private readonly draining = new Set<OwnedPartition>();
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  /** When the last heartbeat that renewed this replica's leases was sent. */
  private renewedAt = 0;
  private stopping?: Promise<void>;
  private stopped = false;
  /** Partitions whose ack floor may have moved since the last flush. */
  private readonly unflushed = new Set<OwnedPartition>();
  private flushScheduled = false;

  constructor(
    private readonly host: PartitionHost,
    readonly sub: PartitionedSubscription,
    tag: string,
  ) {
    this.group = durableName(sub.queue, tag);
  }

  /** Partitions this replica owns now, with their epochs. */
  ownership(): { partition: number; epoch: number }[] {
    return [...this.owned.values()]
      .map((o) => ({ partition: o.fence.partition, epoch: o.fence.epoch }))
      .sort((a, b) => a.partition - b.partition);
  }

  /** Messages taken and not finished. */
  get inflight(): number {
    let n = 0;
    for (const o of this.owned.values()) n += o.pending.size;
    for (const o of this.draining) n += o.pending.size;
    return n;
  }

  /**
   * Every partition gets a consumer (interest retention keeps only what some consumer wants), then
   * the first heartbeat. Those placeholders (epoch 0) are never pulled or acked: the first claim
   * reads their floor and deletes them. One made by a replica that started together with another,
   * after that other's first claim had deleted the partition's placeholder, would hold every
   * message of its partition in the stream until the next claim: it is deleted here, as is any
   * such leftover of an earlier start.
   */
  async start(): Promise<void> {
    const existing = await this.consumersByPartition();
    const missing: number[] = [];
    for (let p = 0; p < this.host.options.partitions; p++) if (!existing.has(p)) missing.push(p);
    await Promise.all(missing.map((p) => this.createConsumer(p, 0, 0)));
    await this.deleteSupersededPlaceholders(
      missing.length > 0 ? await this.consumersByPartition() : existing,
    );
    await this.tick();
    const every = Math.max(100, Math.min(1_000, Math.floor(this.host.options.partitionLeaseMs / 4)));
    this.timer = setInterval(() => void this.tick(), every);
    this.timer.unref();
  }

  /**
   * Graceful stop: pull nothing more, finish what was taken (bounded by the drain timeout), give
   * the partitions back and leave the group, so the others take over at their next heartbeat.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      clearInterval(this.timer);
      await this.ticking;
      const all = [...this.owned.values()];
      this.owned.clear();
      await Promise.all([...all.map((o) => this.handOver(o)), ...[...this.draining].map((o) => o.drained)]);
      await this.host.leases.leave(this.group, this.host.replica).catch(() => undefined);
    })();
    return this.stopping;
  }

  /** Stop pulling now (first half of a drain); `stop()` finishes. */
  async pause(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.ticking;
    await Promise.all([...this.owned.values()].map((o) => o.stopPulling()));
  }

  /** The connection dropped: what was taken before may come again as a first delivery (see OwnedPartition.connectionLost). */
  connectionLost(): void {
    for (const o of this.owned.values()) o.connectionLost();
    for (const o of this.draining) o.connectionLost();
  }

  /** After a reconnect: partitions whose consumer the server lost are re-opened at the next heartbeat. */
  async verify(): Promise<void> {
    await Promise.all(
      [...this.owned.values()].map(async (o) => {
        try {
          await this.host.jsm.consumers.info(this.sub.stream, o.name);
        } catch (e) {
          if (/not found/i.test((e as Error).message)) o.needsReopen = true;
        }
      }),
    );
  }

  private tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.heartbeat()
      .catch((e: unknown) => {
        this.logger.warn(
          { group: this.group, err: (e as Error).message },
          'partition heartbeat failed; retrying',
        );
      })
      .finally(() => {
        this.ticking = undefined;
      });
    return this.ticking;
  }

  private async heartbeat(): Promise<void> {
    const { leases, replica, options } = this.host;
    // Cut off from NATS it can run nothing: no heartbeat, so its leases and membership lapse and
    // the others take its partitions. Back online, it finds them lost and rejoins.
    if (!this.host.connected()) return;
    const mine = [...this.owned.values(), ...this.draining];
    const started = Date.now();
    const { members, lost } = await leases.tick(
      this.group,
      replica,
      mine.map((o) => o.fence),
      options.partitionLeaseMs,
    );
    this.renewedAt = started;
    for (const fence of lost) {
      const o = mine.find((x) => x.fence === fence);
      if (!o) continue;
      if (this.owned.get(fence.partition) === o) this.owned.delete(fence.partition);
      this.draining.delete(o);
      this.logger.warn(
        { group: this.group, partition: fence.partition, epoch: fence.epoch },
        'partition lease lost (it lapsed or was taken over); its unfinished messages go to the new owner',
      );
      o.abandon();
    }
    if (this.stopped) return;
    const want = new Set(fairShare(members, replica, options.partitions));
    for (const o of [...this.owned.values()]) {
      // Not ours any more, or its deliveries broke off (see OwnedPartition.follows): handed
      // over, to another replica or back to this one at a new epoch. Drains in the background;
      // the next heartbeats keep its lease alive meanwhile.
      if (!want.has(o.fence.partition) || o.needsResync) {
        this.owned.delete(o.fence.partition);
        void this.handOver(o);
      } else if (o.needsReopen) {
        await o.reopen();
      }
    }
    const claims: Promise<void>[] = [];
    // A partition still draining here is claimed once its floor is acked and its lease released:
    // claimed earlier, the new consumer would start below what the drain is finishing.
    const draining = new Set([...this.draining].map((o) => o.fence.partition));
    for (const p of want) if (!this.owned.has(p) && !draining.has(p)) claims.push(this.claim(p));
    await Promise.all(claims);
  }

  private async claim(partition: number): Promise<void> {
    const { leases, replica, options } = this.host;
    const fence = await leases.claim(this.group, partition, replica, options.partitionLeaseMs);
    // Still held by the previous owner (draining, or dead until its lease lapses): next heartbeat.
    if (!fence) return;
    if (this.stopped) {
      await leases.release(fence).catch(() => undefined);
      return;
    }
    const o = new OwnedPartition(
      this.host,
      this.sub,
      this.group,
      fence,
      () => this.current(),
      (x) => this.settled(x),
    );
    this.owned.set(partition, o);
    try {
      const previous = await this.consumersByPartition(partition);
      await o.open(previous.get(partition) ?? []);
      this.logger.log(
        { group: this.group, partition, epoch: fence.epoch, startSeq: o.startSeq },
        'partition claimed',
      );
    } catch (e) {
      this.owned.delete(partition);
      o.abandon();
      await leases.release(fence).catch(() => undefined);
      this.logger.warn(
        { group: this.group, partition, err: (e as Error).message },
        'could not open a claimed partition; released it',
      );
    }
  }

  /**
   * Resolves once this replica's leases are known to be current: after a stall (a long GC pause,
   * SIGSTOP) longer than half a lease, a heartbeat first, which abandons the partitions it lost
   * before a message of theirs starts a flow whose commit would be refused anyway.
   */
  private async current(): Promise<void> {
    if (Date.now() - this.renewedAt > this.host.options.partitionLeaseMs / 2) await this.tick();
  }

  /**
   * A message of `o` finished: its ack floor may move. Acks are coalesced, at most one per
   * partition per flush: every `ackIntervalMs`, or at the end of this event-loop turn when it is 0.
   */
  private settled(o: OwnedPartition): void {
    this.unflushed.add(o);
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    const every = this.host.options.ackIntervalMs;
    if (every <= 0) {
      this.host.later(this.flush);
      return;
    }
    setTimeout(this.flush, every).unref();
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const list = [...this.unflushed];
    this.unflushed.clear();
    for (const o of list) void o.flushAcks();
  };

  private async handOver(o: OwnedPartition): Promise<void> {
    this.draining.add(o);
    await o.drain(this.host.options.drainTimeoutMs);
    this.draining.delete(o);
    if (o.isLost) return;
    await this.host.leases.release(o.fence).catch(() => undefined);
    this.logger.log(
      { group: this.group, partition: o.fence.partition, epoch: o.fence.epoch },
      'partition handed over',
    );
  }

  /** The group's consumers per partition, newest epoch first (`only`: just that partition's). */
  private async consumersByPartition(only?: number): Promise<Map<number, ConsumerRef[]>> {
    const out = new Map<number, ConsumerRef[]>();
    const prefix = `${this.group}_p`;
    for (const c of await listConsumers(this.host.jsm, this.sub.stream)) {
      const name = c.config.durable_name ?? c.name;
      if (!name.startsWith(prefix)) continue;
      const rest = name.slice(prefix.length);
      const p = Number.parseInt(rest, 10);
      if (!Number.isInteger(p) || (only !== undefined && p !== only)) continue;
      const m = CONSUMER_EPOCH.exec(rest);
      // `{group}_p{N}` without an epoch: the consumer of a runner before partition owners.
      if (!m && rest !== String(p)) continue;
      const list = out.get(p) ?? [];
      list.push({
        name,
        epoch: m ? Number(m[1]) : -1,
        ackFloor: c.ack_floor?.stream_seq ?? 0,
        unfinished: c.num_ack_pending,
      });
      out.set(p, list);
    }
    for (const list of out.values()) list.sort((a, b) => b.epoch - a.epoch);
    return out;
  }

  /** Deletes each partition's placeholder (epoch 0) once a claimed consumer (epoch 1 or later) exists beside it. */
  private async deleteSupersededPlaceholders(consumers: Map<number, ConsumerRef[]>): Promise<void> {
    const superseded = [...consumers.values()].flatMap((list) =>
      list.some((c) => c.epoch > 0) ? list.filter((c) => c.epoch === 0) : [],
    );
    await Promise.all(
      superseded.map((c) =>
        this.host.jsm.consumers.delete(this.sub.stream, c.name).then(
          () =>
            this.logger.log(
              { group: this.group, consumer: c.name },
              'superseded placeholder consumer deleted',
            ),
          (e: unknown) => {
            // Hygiene, not a condition to start: the next claim of the partition deletes it too.
            if (!/not found/i.test(errorText(e)))
              this.logger.warn(
                { group: this.group, consumer: c.name, err: errorText(e) },
                'could not delete a superseded placeholder consumer',
              );
          },
        ),
      ),
    );
  }

  private createConsumer(partition: number, epoch: number, startSeq: number): Promise<unknown> {
    return this.host.jsm.consumers.add(
      this.sub.stream,
      consumerConfig(this.host, this.sub, this.group, partition, epoch, startSeq),
    );
  }
}

interface ConsumerRef {
  name: string;
  epoch: number;
  ackFloor: number;
  /** Messages it delivered and nobody acked. */
  unfinished: number;
}

function consumerConfig(
  host: PartitionHost,
  sub: PartitionedSubscription,
  group: string,
  partition: number,
  epoch: number,
  startSeq: number,
): Partial<ConsumerConfig> {
  const cfg: Partial<ConsumerConfig> = {
    durable_name: `${group}_p${partition}_e${epoch}`,
    // One ack per partition per flush acknowledges everything below it (see AckFloor). Each claim
    // makes a new consumer, so consumers made with AckPolicy.Explicit by an older runner are
    // simply replaced at their ack floor.
    ack_policy: AckPolicy.All,
    ack_wait: host.options.ackWaitMs * 1_000_000,
    // Deliveries are counted here, not by the server (see NatsBus).
    max_deliver: -1,
    max_ack_pending: host.options.maxAckPending,
    filter_subject: host.mapper.partitionFilter(sub.pattern, partition),
    deliver_policy: DeliverPolicy.All,
  };
  if (startSeq > 1) {
    cfg.deliver_policy = DeliverPolicy.StartSequence;
    cfg.opt_start_seq = startSeq;
  }
  return cfg;
}

/** A partition this replica owns: its consumer, its pull, its session lanes, its ack floor. */
class OwnedPartition {
  private readonly logger = new Logger('NatsBus');
  readonly name: string;
  /** Messages taken and not finished. */
  readonly pending = new Set<JsMsg>();
  /** Messages taken and not yet acknowledged (finished or not), by stream sequence. */
  private readonly acks = new AckFloor<JsMsg>();
  /** Taken, waiting for room under the replica's in-flight limit, in delivery order, with their consumer's generation. */
  private readonly waiting: { m: JsMsg; generation: number }[] = [];
  private admitting = false;
  private readonly lanes = new KeyedLanes();
  private messages?: ConsumerMessages;
  private pulling?: Promise<void>;
  private beat?: NodeJS.Timeout;
  private stopped = false;
  /** The lease is gone: nothing more is acked or written; the new owner replays. */
  private lost = false;
  /** The server said the consumer is gone: pulling stops until the heartbeat re-opens it (or finds the lease lost). */
  needsReopen = false;
  /**
   * Bumped when the server lost this consumer and it is made again: the new one delivers every
   * unfinished message again, so copies taken from the old one are not run (nor acked).
   */
  private generation = 0;
  /** Bumped by each pull loop started: an older loop still winding down pulls no more. */
  private pulls = 0;
  startSeq = 0;
  /** The highest stream sequence taken from the server so far. */
  private highestTaken = 0;
  /** The consumer's delivery sequence of the last message received from it (0: none yet). */
  private lastDelivery = 0;
  /**
   * Its deliveries broke off (see `follows`): it takes nothing more, and the heartbeat hands the
   * partition over to this replica again, at a new epoch whose consumer starts at the floor.
   */
  needsResync = false;
  /** Sequences up to here were taken before the connection last dropped. */
  private takenBeforeDrop = 0;
  /** The previous owner's unfinished tail ends here; its messages were delivered `carried` more times. */
  private tailEnd = 0;
  /**
   * The stream's last sequence when this owner opened after another: up to here, the previous
   * owner may have run a message however the server counts its deliveries. A server restarted
   * mid hand-over comes back with the previous consumer's state flushed seconds earlier, so its
   * ack floor and pending count can both read as if nothing past the floor was ever delivered.
   */
  private previousOwnerEnd = 0;
  private carried = 0;
  /** Settles when a hand-over's drain is done. */
  drained: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: PartitionHost,
    private readonly sub: PartitionedSubscription,
    private readonly group: string,
    readonly fence: OwnershipFence,
    /** Resolves once the replica's leases are known to be current (see PartitionedConsumer.current). */
    private readonly current: () => Promise<void>,
    /** A message finished: the ack floor may move at the next flush. */
    private readonly settled: (o: OwnedPartition) => void,
  ) {
    this.name = `${group}_p${fence.partition}_e${fence.epoch}`;
  }

  /**
   * Creates this epoch's consumer at the previous owner's ack floor, then deletes the older ones
   * (after: interest retention must always see a consumer), then pulls.
   */
  async open(previous: ConsumerRef[]): Promise<void> {
    const { jsm } = this.host;
    const newest = previous.find((c) => c.epoch < this.fence.epoch);
    this.startSeq = newest ? newest.ackFloor + 1 : 0;
    if (newest) {
      const lastSeq = (await jsm.streams.info(this.sub.stream)).state.last_seq;
      // A placeholder (epoch 0) was never pulled: nothing of it can have run.
      if (newest.epoch !== 0) this.previousOwnerEnd = lastSeq;
      // The previous consumer's own "delivered" sequence is rewound while a message awaits
      // redelivery, so the tail is bounded by the stream's last sequence: a message queued there
      // but never delivered may be counted once too often, never too rarely. Under AckAll the
      // tail also holds messages that finished after the last ack the previous owner sent (a
      // crash): they count one more delivery too, and the session's processed ids skip them.
      this.tailEnd = newest.unfinished > 0 ? lastSeq : newest.ackFloor;
      this.carried = await this.host.leases.carry(
        this.group,
        this.fence.partition,
        newest.ackFloor,
        this.tailEnd,
      );
    }
    await jsm.consumers.add(
      this.sub.stream,
      consumerConfig(this.host, this.sub, this.group, this.fence.partition, this.fence.epoch, this.startSeq),
    );
    for (const c of previous) {
      if (c.epoch >= this.fence.epoch) continue;
      await jsm.consumers.delete(this.sub.stream, c.name).catch((e: unknown) => {
        if (!/not found/i.test((e as Error).message)) throw e;
      });
    }
    this.startPulling();
  }

  /**
   * The connection dropped. If the server restarts, it comes back with consumer state flushed
   * seconds earlier, so messages already taken here (and finished, sent, acked) can be delivered
   * again as if for the first time.
   */
  connectionLost(): void {
    this.takenBeforeDrop = this.highestTaken;
  }

  /**
   * Re-opens the pull after the server said this consumer was gone. What was taken keeps running
   * meanwhile: the partition is still ours (the heartbeat that called this checked the lease).
   *
   * - Found after all (a restarted server answers "not found" until its JetStream has recovered
   *   the consumer): pulling resumes on it, and the messages taken from it stay held on the ack
   *   floor. Dropping them there would let the ack of a later sequence (AckAll) acknowledge them
   *   unrun: the consumer does not deliver them again on its own.
   * - Really gone (a restart on wiped storage): it is made again with the config it had (from the
   *   epoch's start sequence) and delivers every unfinished message again; the copies taken from
   *   the old one are dropped.
   */
  async reopen(): Promise<void> {
    this.needsReopen = true;
    await this.closePull();
    const found = await this.host.jsm.consumers.info(this.sub.stream, this.name).then(
      () => true,
      (e: unknown) => (/not found/i.test(errorText(e)) ? false : undefined),
    );
    // Not answering yet: try again at the next heartbeat.
    if (found === undefined || this.stopped || this.lost) return;
    if (!found && !(await this.recreate())) return;
    this.needsReopen = false;
    this.startPulling();
  }

  /**
   * Makes this epoch's consumer again after the server lost it, with the config it was made with
   * (so that making it is a no-op if the server has it after all); false if that failed (retried
   * at the next heartbeat).
   */
  private async recreate(): Promise<boolean> {
    this.generation++;
    this.lastDelivery = 0;
    this.acks.clear();
    // A stream that lost its messages too numbers them from 1 again: those are new, not replays,
    // and the epoch's start sequence means nothing any more.
    const lastSeq = await this.host.jsm.streams.info(this.sub.stream).then(
      (i) => i.state.last_seq,
      () => undefined,
    );
    if (lastSeq !== undefined && lastSeq < Math.max(this.highestTaken, this.startSeq - 1)) {
      this.highestTaken = this.takenBeforeDrop = this.previousOwnerEnd = 0;
      this.startSeq = 0;
    }
    return this.host.jsm.consumers
      .add(
        this.sub.stream,
        consumerConfig(
          this.host,
          this.sub,
          this.group,
          this.fence.partition,
          this.fence.epoch,
          this.startSeq,
        ),
      )
      .then(
        () => true,
        (e: unknown) => {
          this.logger.warn({ consumer: this.name, err: errorText(e) }, 'could not re-create consumer');
          return false;
        },
      );
  }

  async stopPulling(): Promise<void> {
    this.stopped = true;
    await this.closePull();
  }

  /** Closes the pull iterator and waits (bounded) for its loop to end. */
  private async closePull(): Promise<void> {
    const m = this.messages;
    if (m) await Promise.race([m.close(), sleep(2_000)]).catch(() => undefined);
    // The loop ends with its iterator; one still waiting for a pull to open is left to notice the stop.
    await Promise.race([this.pulling, sleep(2_000)]);
  }

  /**
   * Finishes the messages running now (bounded), for a hand-over; those still queued are left.
   * Then acks the floor they reached, confirmed by the server, so the next owner starts after it.
   */
  drain(timeoutMs: number): Promise<void> {
    this.drained = (async () => {
      await this.stopPulling();
      await Promise.race([this.lanes.idle(), sleep(timeoutMs)]);
      clearInterval(this.beat);
      await this.flushAcks(true);
    })();
    return this.drained;
  }

  get isLost(): boolean {
    return this.lost;
  }

  /** The lease is lost: stop at once; running handlers' writes are refused by the fence. */
  abandon(): void {
    this.lost = true;
    clearInterval(this.beat);
    void this.stopPulling();
  }

  /**
   * Acks the highest stream sequence below which every message taken has finished, if it moved:
   * one ack for all of them (AckAll). `confirmed`: waits for the server to apply it (a hand-over).
   */
  async flushAcks(confirmed = false): Promise<void> {
    if (this.lost) return;
    const m = this.acks.advance();
    if (!m) return;
    if (!confirmed) {
      m.ack();
      return;
    }
    await m.ackAck({ timeout: 2_000 }).catch((e: unknown) => {
      this.logger.warn(
        { consumer: this.name, err: (e as Error).message },
        'ack at hand-over not confirmed; the next owner may replay finished messages (their ids are skipped)',
      );
    });
  }

  private startPulling(): void {
    const every = Math.max(200, Math.floor(this.host.options.ackWaitMs / 3));
    clearInterval(this.beat);
    // Every message not acked yet (waiting for room, queued in a lane, running, or finished behind
    // an unfinished one) counts as in progress: its ack_wait must not lapse meanwhile. Those taken
    // since the last beat have most of theirs left.
    this.beat = setInterval(() => {
      for (const m of this.acks.held(Date.now() - every)) m.working();
    }, every);
    this.beat.unref();
    this.pulling = this.pull(++this.pulls);
  }

  private async pull(run: number): Promise<void> {
    const { js, options } = this.host;
    // Fewer, larger pulls: the server never has more than max_ack_pending delivered and unacked
    // on the consumer, so a batch above it is never filled. Each refill asks for ~3/4 of a batch.
    const batch = Math.max(1, Math.min(options.pullBatch, options.maxAckPending));
    const threshold = Math.max(1, Math.floor(batch / 4));
    // Ends at a stop, a lost lease, a lost consumer (the heartbeat re-opens it) or a newer loop.
    const ended = () => this.stopped || this.lost || this.needsReopen || run !== this.pulls;
    while (!ended()) {
      try {
        const consumer = await js.consumers.get(this.sub.stream, this.name);
        const messages = await consumer.consume({ max_messages: batch, threshold_messages: threshold });
        this.messages = messages;
        void this.watch(messages);
        this.host.keepPulling(messages, this.name);
        if (ended()) await messages.close();
        for await (const m of messages) {
          // Pulled after the stop: left unacked, the next owner's consumer replays it from the
          // floor. Anything else delivered is taken, whichever loop it came through: while the
          // partition is ours, a message skipped here would be acknowledged by a later one's ack.
          if (this.stopped || this.lost || !this.follows(m)) continue;
          // Taken at once, so the beat keeps it alive however long it waits for admission: a
          // message left in the iterator's buffer would have its ack_wait run out unseen.
          this.pending.add(m);
          if (m.seq > this.highestTaken) this.highestTaken = m.seq;
          this.acks.take(m.seq, m, Date.now());
          this.waiting.push({ m, generation: this.generation });
          if (!this.admitting) void this.admitAll();
        }
        if (ended()) return;
      } catch (e) {
        if (ended()) return;
        const msg = (e as Error).message;
        if (/not found/i.test(msg)) {
          this.needsReopen = true;
          return;
        }
        this.logger.warn({ consumer: this.name, err: msg }, 'pull consumer interrupted; retrying');
        await sleep(1_000);
      }
    }
  }

  /**
   * Whether `m` is the delivery right after the last one received: the server numbers each
   * delivery of a consumer (`deliverySequence`), and in one connection's stream they arrive in
   * that order. A gap means deliveries this owner never received: sent to a pull it had just
   * closed, or on a connection that dropped: the server holds them as delivered, and under AckAll
   * the next ack of a later message would acknowledge them unrun (a reply never sent, an inbound
   * message never answered). A step back means a restarted server numbering again from state it
   * flushed earlier: from there on, what arrives can no longer be checked against what was sent.
   * Either way it takes nothing more: what it took finishes, its floor is acked, and
   * the partition is opened again at a new epoch, whose consumer starts at that floor and delivers
   * everything above it (those that finished are recognised as redeliveries).
   */
  private follows(m: JsMsg): boolean {
    const expected = this.lastDelivery + 1;
    this.lastDelivery = m.info.deliverySequence;
    if (m.info.deliverySequence === expected) return true;
    this.logger.warn(
      {
        consumer: this.name,
        partition: this.fence.partition,
        expected,
        delivered: m.info.deliverySequence,
        seq: m.seq,
      },
      'deliveries broke off (lost in transit, or renumbered by a restarted server); re-opening the partition at its acknowledged floor',
    );
    this.needsResync = true;
    this.stopped = true;
    this.host.count('reopened');
    return false;
  }

  /** Admits the waiting messages one by one, in delivery order, into their session lanes. */
  private async admitAll(): Promise<void> {
    this.admitting = true;
    try {
      for (let w = this.waiting.shift(); w; w = this.waiting.shift()) {
        const release = await this.host.admit();
        if (this.stopped || this.lost || w.generation !== this.generation) {
          // Left unacked, holding the floor: the next owner (or the re-made consumer) replays it.
          release();
          this.pending.delete(w.m);
          continue;
        }
        this.run(w.m, w.generation, release);
      }
    } finally {
      this.admitting = false;
    }
  }

  private run(m: JsMsg, generation: number, release: () => void): void {
    const done = (): void => {
      release();
      this.pending.delete(m);
    };
    const subject = this.host.mapper.fromWire(m.subject);
    let data: unknown;
    try {
      data = m.json();
    } catch (e) {
      const error = { code: 'malformed_json', message: (e as Error).message };
      const raw = new TextDecoder().decode(m.data);
      void this.settle(m, () => this.deadLetter(m, subject, this.host.headerRecord(m), raw, error))
        .catch(() => undefined)
        .finally(done);
      return;
    }
    void this.lanes
      .add(this.host.orderingKey(subject, data), () =>
        this.settle(m, () => this.handle(m, generation, subject, data)),
      )
      .catch(() => undefined)
      .finally(done);
  }

  /** Runs `work`; if it finished the message (handled or dead-lettered), the floor may pass it. */
  private async settle(m: JsMsg, work: () => Promise<boolean>): Promise<void> {
    if (!(await work())) return;
    this.acks.finish(m.seq, m);
    this.host.count('acked');
    if (!this.lost) this.settled(this);
  }

  private async watch(messages: ConsumerMessages): Promise<void> {
    for await (const s of messages.status()) {
      if (
        (s.type === 'consumer_not_found' || s.type === 'consumer_deleted' || s.type === 'stream_not_found') &&
        !this.stopped &&
        !this.lost
      ) {
        // Deleted by a newer owner (the heartbeat will say the lease is lost), lost by the server,
        // or not recovered yet by a restarted one: pull no more now; the heartbeat decides which.
        // What was taken keeps running: it is this partition's until the lease says otherwise.
        this.logger.warn(
          { consumer: this.name, status: s.type },
          'consumer reported lost; the next heartbeat re-opens it',
        );
        this.needsReopen = true;
        await messages.close().catch(() => undefined);
      }
    }
  }

  /**
   * Dead-letters `m`; a failed publish is retried in place with backoff (the message holding the
   * floor meanwhile) until it is published or the partition is stopped or lost.
   */
  private async deadLetter(
    m: JsMsg,
    subject: string,
    headers: Record<string, string>,
    data: unknown,
    error: { code: string; message: string },
    deliveries?: number,
  ): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      if (await this.host.deadLetter(m, subject, headers, data, error, deliveries)) return true;
      if (this.stopped || this.lost) return false;
      await this.host.pause(this.host.backoff(attempt, undefined));
    }
  }

  /**
   * Runs one message in its session's lane. A dependency outage is retried in place (not
   * counted); any other failure is retried in the lane with backoff, holding back only its own
   * session, until the delivery limit dead-letters it. True once finished (handled or
   * dead-lettered); false when left for the next owner (stopped or lost before finishing).
   */
  private async handle(m: JsMsg, generation: number, subject: string, data: unknown): Promise<boolean> {
    await this.current();
    // Stopped (a hand-over or a drain) or lost before its turn came: left unacked, the next
    // owner's consumer replays it from the ack floor, in order. Taken from a consumer the server
    // lost: the re-made one delivers it again.
    if (this.stopped || this.lost || generation !== this.generation) return false;
    const headers = this.host.headerRecord(m);
    // Deliveries by earlier owners' consumers count too (see PartitionLeaseStore.carry).
    let firstDelivery = m.info.deliveryCount + (m.seq <= this.tailEnd ? this.carried : 0);
    // Taken before the connection dropped (or in the stream before this owner took over): a
    // restarted server can deliver it again with the count it had flushed (1), though it ran here
    // (or on the previous owner). Counted as the redelivery it may be, so the handler checks what
    // was done (egress reads its delivery ledger).
    if ((m.seq <= this.takenBeforeDrop || m.seq <= this.previousOwnerEnd) && firstDelivery < 2)
      firstDelivery = 2;
    // Past the limit, a handler that recognises finished work still sees the message once: it may
    // have finished behind one that crashed every replica, and been replayed with it each time.
    const pastLimit = firstDelivery > this.sub.maxDeliver;
    if (pastLimit && !this.sub.replaysPastLimit) {
      return this.deadLetter(
        m,
        subject,
        headers,
        data,
        { code: 'max_deliveries', message: `delivered ${firstDelivery} times without success` },
        firstDelivery,
      );
    }
    let failures = 0;
    for (let attempt = 1; ; attempt++) {
      if (this.lost || generation !== this.generation) return false;
      const deliveryCount = firstDelivery + failures;
      this.host.count('running');
      try {
        await this.sub.handler({ subject, data, headers, deliveryCount, fence: this.fence, pastLimit });
        this.host.count('finished');
        return !this.lost;
      } catch (err) {
        if (err instanceof OwnershipLostError || this.lost) {
          this.lost = true;
          return false;
        }
        this.host.count('finished');
        const tenant = parseSubject(subject)?.tenant;
        if (isUnavailableError(err)) {
          // Stopping while a dependency is down: leave it for the next owner.
          if (this.stopped) return false;
          const delay = this.host.backoff(attempt, err);
          if (attempt === 1 || attempt % 10 === 0)
            this.logger.warn(
              { subject, tenant, attempt, retryInMs: delay, err: errorText(err) },
              'dependency unavailable; retrying the message in place',
            );
          await this.host.pause(delay);
          continue;
        }
        failures++;
        if (isPermanentError(err) || deliveryCount >= this.sub.maxDeliver) {
          const code = err instanceof GreenticError ? err.code : 'handler_failed';
          return this.deadLetter(m, subject, headers, data, { code, message: errorText(err) }, deliveryCount);
        }
        const delay = this.host.backoff(failures, err);
        this.logger.warn(
          { subject, tenant, attempt: deliveryCount, retryInMs: delay, err: errorText(err) },
          'message failed; retrying it in its session with backoff',
        );
        this.host.count('retried');
        await sleep(delay);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
