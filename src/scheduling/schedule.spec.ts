import { describe, expect, it } from 'vitest';
import { TickSchedule } from './schedule.js';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

describe('TickSchedule', () => {
  it('aligns intervals to the epoch, so every replica computes the same ticks', () => {
    const s = new TickSchedule({ kind: 'interval', everyMs: 5_000 });
    expect(iso(s.next(at('2026-01-01T00:00:03.250Z')))).toBe('2026-01-01T00:00:05.000Z');
    expect(iso(s.next(at('2026-01-01T00:00:05.000Z')))).toBe('2026-01-01T00:00:10.000Z');
    expect(s.between(at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:21Z'), 100).map(iso)).toEqual([
      '2026-01-01T00:00:05.000Z',
      '2026-01-01T00:00:10.000Z',
      '2026-01-01T00:00:15.000Z',
      '2026-01-01T00:00:20.000Z',
    ]);
    // Catch-up keeps the latest ticks when there are more than it may run.
    expect(s.between(at('2026-01-01T00:00:00Z'), at('2026-01-01T00:00:21Z'), 2).map(iso)).toEqual([
      '2026-01-01T00:00:15.000Z',
      '2026-01-01T00:00:20.000Z',
    ]);
  });

  it('runs cron in the binding time zone across a daylight-saving change', () => {
    const s = new TickSchedule({ kind: 'cron', expression: '0 9 * * *', timezone: 'Europe/Paris' });
    // 09:00 in Paris is 08:00Z in winter and 07:00Z from the last Sunday of March.
    expect(iso(s.next(at('2026-03-28T06:00:00Z')))).toBe('2026-03-28T08:00:00.000Z');
    expect(iso(s.next(at('2026-03-28T08:00:00Z')))).toBe('2026-03-29T07:00:00.000Z');
    expect(s.between(at('2026-03-27T12:00:00Z'), at('2026-03-30T12:00:00Z'), 10).map(iso)).toEqual([
      '2026-03-28T08:00:00.000Z',
      '2026-03-29T07:00:00.000Z',
      '2026-03-30T07:00:00.000Z',
    ]);
  });

  it('supports second-level cron and reports no next tick for a schedule that has ended', () => {
    const every5s = new TickSchedule({ kind: 'cron', expression: '*/5 * * * * *', timezone: 'UTC' });
    expect(iso(every5s.next(at('2026-01-01T00:00:05Z')))).toBe('2026-01-01T00:00:10.000Z');
    const once = new TickSchedule({ kind: 'cron', expression: '0 0 12 1 1 * 2020', timezone: 'UTC' });
    expect(once.next(at('2026-01-01T00:00:00Z'))).toBeUndefined();
  });
});
