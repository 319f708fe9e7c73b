import type { Logger } from '@nestjs/common';
import type { TimerBinding } from '../tenancy/bundle.types.js';
import { TickSchedule } from './schedule.js';
import type { TickLedger } from './tick-ledger.js';

/** A tick this replica means to see run. */
export interface PendingTick {
  tick: number;
  /** Replayed after every replica was down (`catch_up`), or taken over from a vanished claimant. */
  catchUp: boolean;
  /** Another replica holds (or held) this very tick: waiting for it is not a misfire. */
  contested: boolean;
}

export type TickOutcome = 'run' | 'failed' | 'duplicate' | 'missed' | 'fenced' | 'gave_up';

/** Runs one claimed tick through the message path; throws only for infrastructure trouble. */
export type TickRunner = (
  timer: TimerBinding,
  tick: PendingTick,
  fence: number,
) => Promise<'run' | 'failed' | 'duplicate'>;

export interface TimerLoopOptions {
  ledger: TickLedger;
  run: TickRunner;
  owner: string;
  leaseMs: number;
  logger: Logger;
  onOutcome?: (timer: TimerBinding, outcome: TickOutcome, tick: number) => void;
  now?: () => number;
  /** Attempts at a tick whose run throws (store or pack trouble) before it is given up. */
  maxAttempts?: number;
}

/** `tenant/env/timer`: the ledger's name of a timer. */
export function timerKey(t: TimerBinding): string {
  return `${t.tenant}/${t.env}/${t.id}`;
}

/**
 * One timer on one replica. Every replica computes the same tick times and asks the ledger for
 * each; the one whose claim wins runs the tick (renewing its lease meanwhile) and confirms it.
 * Ticks run in order, one at a time per timer. A tick that could not start within the binding's
 * misfire grace is missed, unless it is a catch-up or is being waited for because another replica
 * holds it (that replica may have died: its tick is then taken over, not dropped).
 */
export class TimerLoop {
  private readonly schedule: TickSchedule;
  private readonly pending: PendingTick[] = [];
  private nextAt: number | undefined;
  private stopped = false;
  private wakeUp?: () => void;
  private running?: Promise<void>;
  private readonly now: () => number;
  private readonly key: string;

  constructor(
    readonly timer: TimerBinding,
    private readonly opts: TimerLoopOptions,
  ) {
    this.schedule = new TickSchedule(timer.schedule);
    this.now = opts.now ?? Date.now;
    this.key = timerKey(timer);
  }

  async start(): Promise<void> {
    const now = this.now();
    if (this.timer.catchUp) {
      const done = await this.opts.ledger.lastDone(this.key).catch(() => undefined);
      if (done !== undefined) {
        for (const tick of this.schedule.between(done, now, this.timer.maxCatchUp))
          this.pending.push({ tick, catchUp: true, contested: false });
        if (this.pending.length > 0)
          this.opts.logger.log(
            { tenant: this.timer.tenant, timer: this.timer.id, ticks: this.pending.length },
            'timer catching up on missed ticks',
          );
      }
    }
    this.nextAt = this.schedule.next(now);
    this.running = this.loop().catch((e: unknown) => {
      this.opts.logger.error(
        { tenant: this.timer.tenant, timer: this.timer.id, err: (e as Error).message },
        'timer loop stopped',
      );
    });
  }

  /** Stops scheduling; a tick being run finishes first. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeUp?.();
    await this.running;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(0, Math.min(ms, 2 ** 31 - 1)));
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wakeUp = done;
    });
  }

  private untilNext(now: number): number {
    return this.nextAt === undefined ? 60_000 : Math.max(0, this.nextAt - now);
  }

  private async loop(): Promise<void> {
    const { ledger, owner, leaseMs } = this.opts;
    const t = this.timer;
    while (!this.stopped) {
      const now = this.now();
      while (this.nextAt !== undefined && this.nextAt <= now) {
        this.pending.push({ tick: this.nextAt, catchUp: false, contested: false });
        this.nextAt = this.schedule.next(this.nextAt);
      }
      const p = this.pending[0];
      if (!p) {
        if (this.nextAt === undefined) return;
        await this.sleep(this.untilNext(now));
        continue;
      }
      if (!p.catchUp && !p.contested && now - p.tick > t.misfireGraceMs) {
        this.pending.shift();
        this.opts.onOutcome?.(t, 'missed', p.tick);
        this.opts.logger.warn(
          { tenant: t.tenant, timer: t.id, tick: new Date(p.tick).toISOString(), lateMs: now - p.tick },
          'timer tick missed: it could not start within its misfire grace (set catch_up to run missed ticks)',
        );
        continue;
      }
      let claim;
      try {
        claim = await ledger.claim(this.key, p.tick, owner, leaseMs);
      } catch (e) {
        this.opts.logger.warn(
          { tenant: t.tenant, timer: t.id, err: (e as Error).message },
          'timer claim failed; retrying',
        );
        await this.sleep(Math.min(1_000, this.untilNext(now)));
        continue;
      }
      switch (claim.status) {
        case 'done':
          this.pending.shift();
          break;
        case 'abandoned': {
          const known = this.pending.find((x) => x.tick === claim.tick);
          if (known) known.contested = true;
          else this.pending.push({ tick: claim.tick, catchUp: true, contested: true });
          this.pending.sort((a, b) => a.tick - b.tick);
          this.opts.logger.warn(
            { tenant: t.tenant, timer: t.id, tick: new Date(claim.tick).toISOString() },
            'timer tick abandoned by its claimant; taking it over',
          );
          break;
        }
        case 'busy':
          if (claim.tick === p.tick) p.contested = true;
          await this.sleep(Math.min(claim.retryInMs + 5, Math.max(50, this.untilNext(now))));
          break;
        case 'won':
          await this.runClaimed(p, claim.fence);
          this.pending.shift();
          break;
      }
    }
  }

  private async runClaimed(p: PendingTick, fence: number): Promise<void> {
    const { ledger, leaseMs, logger } = this.opts;
    const t = this.timer;
    const log = { tenant: t.tenant, env: t.env, timer: t.id, tick: new Date(p.tick).toISOString(), fence };
    let fencedOut = false;
    const renew = setInterval(
      () => {
        ledger.renew(this.key, p.tick, fence, leaseMs).then(
          (ok) => {
            if (!ok && !fencedOut) {
              fencedOut = true;
              logger.warn(log, 'timer tick lease taken over by another replica while running');
            }
          },
          () => undefined,
        );
      },
      Math.max(100, Math.floor(leaseMs / 3)),
    );
    let outcome: TickOutcome = 'gave_up';
    try {
      const max = this.opts.maxAttempts ?? 3;
      for (let attempt = 1; attempt <= max; attempt++) {
        try {
          outcome = await this.opts.run(t, p, fence);
          break;
        } catch (e) {
          logger.warn({ ...log, attempt, err: (e as Error).message }, 'timer tick could not run');
          if (attempt < max) await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    } finally {
      clearInterval(renew);
    }
    if (outcome === 'gave_up') logger.error(log, 'timer tick given up after repeated failures');
    let confirmed = false;
    for (let i = 0; i < 3 && !confirmed; i++) {
      try {
        confirmed = await ledger.confirm(this.key, p.tick, fence);
        if (!confirmed) break;
      } catch (e) {
        logger.warn({ ...log, err: (e as Error).message }, 'timer tick confirm failed; retrying');
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (!confirmed) {
      // Taken over while running: the other run finds the tick id already processed, if it was.
      logger.warn(log, 'timer tick not confirmed: fenced out by a newer claim');
      outcome = 'fenced';
    }
    this.opts.onOutcome?.(t, outcome, p.tick);
  }
}
