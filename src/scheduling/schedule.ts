import { Cron } from 'croner';
import type { TimerSchedule } from '../tenancy/bundle.types.js';

/**
 * Tick times of a schedule. Every replica computes the same times (cron in the binding's time
 * zone, intervals aligned to the UTC epoch), so a tick has one id cluster-wide, whichever replica
 * fires it.
 */
export class TickSchedule {
  private readonly cron?: Cron;

  constructor(readonly schedule: TimerSchedule) {
    // croner: maintained, no dependencies, time zones through Intl and DST-aware (a 09:00 job stays
    // at 09:00 local time across the change); `paused` because it only computes times here.
    if (schedule.kind === 'cron')
      this.cron = new Cron(schedule.expression, { timezone: schedule.timezone, paused: true });
  }

  /** The first tick strictly after `afterMs`, or undefined when the schedule has no more (a cron for a past year). */
  next(afterMs: number): number | undefined {
    if (this.schedule.kind === 'interval') {
      const every = this.schedule.everyMs;
      return (Math.floor(afterMs / every) + 1) * every;
    }
    return this.cron!.nextRun(new Date(afterMs))?.getTime();
  }

  /** Ticks in (fromMs, toMs], oldest first, at most the last `max` of them. */
  between(fromMs: number, toMs: number, max: number): number[] {
    if (this.schedule.kind === 'interval') {
      const every = this.schedule.everyMs;
      const last = Math.floor(toMs / every) * every;
      const first = Math.max((Math.floor(fromMs / every) + 1) * every, last - (max - 1) * every);
      const out: number[] = [];
      for (let t = first; t <= last; t += every) out.push(t);
      return out;
    }
    const out: number[] = [];
    for (let t = this.next(fromMs); t !== undefined && t <= toMs; t = this.next(t)) {
      out.push(t);
      if (out.length > max) out.shift();
    }
    return out;
  }
}
