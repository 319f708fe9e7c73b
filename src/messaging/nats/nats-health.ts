import type { Logger } from '@nestjs/common';
import type { ConsumerInfo, JetStreamManager } from '@nats-io/jetstream';
import { listConsumers } from './consumer-list.js';

/**
 * Consumers whose lag is summed under `group` in `details.lag`: the one named `name` (reported
 * missing when the server lacks it), or every consumer of the stream whose name starts with
 * `prefix` (a queue group's consumers, whichever replica pulls from them). A consumer counts once
 * per group.
 */
export interface HealthConsumerRef {
  stream: string;
  group: string;
  name?: string;
  prefix?: string;
}

export interface JetStreamHealthOptions {
  /** Streams reported in `details.streams`, by the key they are reported under. */
  streams: Record<string, string>;
  /** The consumers this bus pulls from now; read at every refresh, so it may change at will. */
  consumers: () => readonly HealthConsumerRef[];
  /** Period of the background refresh. */
  refreshMs: number;
  /** A snapshot older than this reads as down (default: three periods). */
  staleAfterMs?: number;
  /** Bound of one refresh (every request of it together). */
  timeoutMs?: number;
  /** Clock, settable for the staleness spec. */
  now?: () => number;
}

interface StreamState {
  name: string;
  messages: number;
  bytes: number;
  consumers: number;
}

interface Lag {
  pending: number;
  ackPending: number;
  redelivered: number;
}

interface Snapshot {
  at: number;
  streams: Record<string, StreamState>;
  lag: Record<string, Lag>;
  /** Consumers the bus pulls from that the server does not have (`stream/name`). */
  missing: string[];
}

/** How the last refresh went: the snapshot is kept across a failure, with its age. */
export interface JetStreamHealth {
  up: boolean;
  details: Record<string, unknown>;
}

/**
 * Stream and consumer state for `/health`, read in the background: a probe answers from memory
 * and makes no JetStream API request (it made one per stream and per consumer, 37 with 16
 * partitions, on every probe). One refresh runs at a time, every `refreshMs`: an info per stream
 * and one consumer list per stream the bus consumes (a list pages 256 consumers per request).
 * The state is down when the last refresh failed, when the snapshot is older than
 * `staleAfterMs`, or when a consumer the bus pulls from is missing on the server (a restart that
 * lost the store) — each with the reason in `details.jetstream.error`.
 */
export class JetStreamHealthMonitor {
  private snapshot?: Snapshot;
  private lastError?: { at: number; message: string };
  private inflight?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private again = false;
  private refreshes = 0;
  /**
   * The read in which each consumer was first asked for: one created after a read began is not
   * missing yet. Counted in reads, not milliseconds: two reads can begin within the same one.
   */
  private readonly firstSeen = new Map<string, number>();
  private reads = 0;
  private readonly staleAfterMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(
    private readonly jsm: JetStreamManager,
    private readonly opts: JetStreamHealthOptions,
    private readonly logger?: Logger,
  ) {
    this.staleAfterMs = opts.staleAfterMs ?? opts.refreshMs * 3;
    this.timeoutMs = opts.timeoutMs ?? Math.max(2_000, Math.min(opts.refreshMs, 10_000));
    this.now = opts.now ?? Date.now;
  }

  /** Starts the background refresh (the first one at once). */
  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * A refresh now (after a reconnect); if one is running (it may have started while disconnected
   * and be waiting for its timeout), another right after it. The timer restarts from its end.
   */
  refreshSoon(): void {
    if (this.stopped) return;
    if (this.inflight) this.again = true;
    else this.schedule(0);
  }

  /** Runs one refresh (or joins the running one). */
  refresh(): Promise<void> {
    this.inflight ??= this.read()
      .then(
        (s) => {
          this.snapshot = s;
          if (this.lastError)
            this.logger?.log({ downForMs: s.at - this.lastError.at }, 'JetStream state readable again');
          this.lastError = undefined;
        },
        (e: unknown) => {
          if (!this.lastError)
            this.logger?.warn({ err: (e as Error).message }, 'JetStream state refresh failed');
          this.lastError = { at: this.now(), message: (e as Error).message };
        },
      )
      .finally(() => {
        this.refreshes++;
        this.inflight = undefined;
      });
    return this.inflight;
  }

  /**
   * The last snapshot, judged now. Before the first refresh has finished it waits for it, so a
   * probe right after start-up does not read an empty state as healthy.
   */
  async report(): Promise<JetStreamHealth> {
    if (!this.snapshot && !this.lastError && !this.stopped) await (this.inflight ?? this.refresh());
    const s = this.snapshot;
    const now = this.now();
    const ageMs = s ? now - s.at : undefined;
    let error: string | undefined;
    if (this.lastError) error = this.lastError.message;
    else if (ageMs === undefined) error = 'JetStream state not read yet';
    else if (ageMs > this.staleAfterMs)
      error = `JetStream state is ${ageMs} ms old (refreshed every ${this.opts.refreshMs} ms)`;
    else if (s!.missing.length > 0) error = `consumers missing on the server: ${s!.missing.join(', ')}`;
    const jetstream: Record<string, unknown> = {
      refreshedAt: s ? new Date(s.at).toISOString() : null,
      ageMs: ageMs ?? null,
      refreshMs: this.opts.refreshMs,
      refreshes: this.refreshes,
    };
    if (error !== undefined) jetstream['error'] = error;
    return {
      up: error === undefined,
      details: { ...(s ? { streams: s.streams, lag: s.lag } : {}), jetstream },
    };
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.refresh().then(() => {
        // After a failure, look again sooner than a period: readiness should follow recovery closely.
        if (this.stopped) return;
        const again = this.again;
        this.again = false;
        this.schedule(
          again ? 0 : this.lastError ? Math.min(1_000, this.opts.refreshMs) : this.opts.refreshMs,
        );
      });
    }, ms);
    this.timer.unref();
  }

  private async read(): Promise<Snapshot> {
    const read = ++this.reads;
    const refs = this.opts.consumers();
    const named = refs.filter((r) => r.name !== undefined).map((r) => `${r.stream}/${r.name}`);
    for (const key of named) if (!this.firstSeen.has(key)) this.firstSeen.set(key, read);
    return withTimeout(
      (async () => {
        const streams: Record<string, StreamState> = {};
        for (const [key, name] of Object.entries(this.opts.streams)) {
          const s = await this.jsm.streams.info(name);
          streams[key] = {
            name: s.config.name,
            messages: s.state.messages,
            bytes: s.state.bytes,
            consumers: s.state.consumer_count,
          };
        }
        const found = new Map<string, ConsumerInfo[]>();
        for (const stream of new Set(refs.map((r) => r.stream))) {
          found.set(stream, await listConsumers(this.jsm, stream));
        }
        const lag: Record<string, Lag> = {};
        const counted = new Map<string, Set<string>>();
        const missing: string[] = [];
        for (const r of refs) {
          const l = (lag[r.group] ??= { pending: 0, ackPending: 0, redelivered: 0 });
          const seen = counted.get(r.group) ?? new Set<string>();
          counted.set(r.group, seen);
          const matches = (found.get(r.stream) ?? []).filter(
            (ci) => ci.name === r.name || (r.prefix !== undefined && ci.name.startsWith(r.prefix)),
          );
          if (r.name !== undefined && !matches.some((ci) => ci.name === r.name)) {
            const key = `${r.stream}/${r.name}`;
            if ((this.firstSeen.get(key) ?? read) < read) missing.push(key);
          }
          for (const ci of matches) {
            if (seen.has(`${r.stream}/${ci.name}`)) continue;
            seen.add(`${r.stream}/${ci.name}`);
            l.pending += ci.num_pending;
            l.ackPending += ci.num_ack_pending;
            l.redelivered += ci.num_redelivered;
          }
        }
        // Forget consumers the bus no longer pulls from.
        const live = new Set(named);
        for (const k of this.firstSeen.keys()) if (!live.has(k)) this.firstSeen.delete(k);
        return { at: this.now(), streams, lag, missing };
      })(),
      this.timeoutMs,
    );
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Error(`JetStream state refresh timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}
