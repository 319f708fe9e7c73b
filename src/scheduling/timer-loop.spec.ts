import { Logger } from '@nestjs/common';
import { afterEach, describe, expect, it } from 'vitest';
import type { TimerBinding } from '../tenancy/bundle.types.js';
import { MemoryTickLedger, type TickLedger } from './tick-ledger.js';
import { TimerLoop, type PendingTick } from './timer-loop.js';

const logger = new Logger('test');
Logger.overrideLogger(['error']);

function timer(over: Partial<TimerBinding> = {}): TimerBinding {
  return {
    id: 'tick',
    tenant: 'acme',
    env: 'dev',
    team: 'default',
    pack: 'p',
    flow: 'f',
    schedule: { kind: 'interval', everyMs: 40 },
    catchUp: false,
    maxCatchUp: 100,
    misfireGraceMs: 60_000,
    input: {},
    ...over,
  };
}

interface Run {
  replica: string;
  tick: number;
  fence: number;
  catchUp: boolean;
}

const loops: TimerLoop[] = [];
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});

function replica(name: string, ledger: TickLedger, runs: Run[], t = timer(), leaseMs = 300) {
  const loop = new TimerLoop(t, {
    ledger,
    owner: name,
    leaseMs,
    logger,
    run: async (_t, p: PendingTick, fence) => {
      runs.push({ replica: name, tick: p.tick, fence, catchUp: p.catchUp });
      return 'run';
    },
  });
  loops.push(loop);
  return loop;
}

async function until(cond: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function consecutive(ticks: number[], every: number): boolean {
  return ticks.every((t, i) => i === 0 || t - ticks[i - 1]! === every);
}

describe('TimerLoop', () => {
  it('runs each tick exactly once between two replicas sharing a ledger, and on when one stops', async () => {
    const ledger = new MemoryTickLedger();
    const runs: Run[] = [];
    const a = replica('a', ledger, runs);
    const b = replica('b', ledger, runs);
    await Promise.all([a.start(), b.start()]);
    await until(() => runs.length >= 10);
    await a.stop();
    const at = runs.length;
    await until(() => runs.length >= at + 10);
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(consecutive(ticks, 40)).toBe(true);
    expect(runs.slice(at + 1).every((r) => r.replica === 'b')).toBe(true);
  });

  it('takes over a tick whose claimant died mid-run, once, after its lease', async () => {
    const ledger = new MemoryTickLedger();
    const runs: Run[] = [];
    let killed = false;
    // Replica `dead` stops answering in the middle of its first tick: no renewal, no confirm, ever.
    const dying: TickLedger = {
      kind: 'dying',
      claim: (...a) => ledger.claim(...a),
      renew: async () => false,
      confirm: async () => false,
      lastDone: (t) => ledger.lastDone(t),
      close: async () => undefined,
    };
    const dead = new TimerLoop(timer(), {
      ledger: dying,
      owner: 'dead',
      leaseMs: 150,
      logger,
      run: () => {
        killed = true;
        return new Promise(() => undefined);
      },
    });
    await dead.start();
    await until(() => killed);
    const b = replica('b', ledger, runs, timer(), 150);
    await b.start();
    await until(() => runs.length >= 6);
    const first = runs[0]!;
    // The dead replica's tick is the first b runs, under a newer fence; no tick is lost or doubled.
    expect(first).toMatchObject({ replica: 'b', catchUp: true, fence: 2 });
    const ticks = runs.map((r) => r.tick);
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(consecutive(ticks, 40)).toBe(true);
    void dead.stop();
  });

  it('skips ticks that could not start within the misfire grace, unless catching up', async () => {
    const ledger = new MemoryTickLedger();
    // A fake clock just past a whole second, so which ticks are late, and by how much, is exact.
    let clock = Math.floor(Date.now() / 1_000) * 1_000 + 10;
    const start = clock;
    const runs: number[] = [];
    const t = timer({ schedule: { kind: 'interval', everyMs: 1_000 }, misfireGraceMs: 100 });
    const loop = new TimerLoop(t, {
      ledger,
      owner: 'a',
      leaseMs: 300,
      logger,
      now: () => clock,
      run: async (_t, p) => {
        runs.push(p.tick);
        return 'run';
      },
    });
    loops.push(loop);
    await loop.start();
    // The process was frozen for 5 s (a stall, a suspended VM): those ticks are missed.
    clock += 5_050;
    await until(() => runs.length >= 1, 2_500);
    // Ticks 1-4 s after start were 1-4 s late and are missed; the one at 5 s is 60 ms late and runs.
    expect(runs).toEqual([start - 10 + 5_000]);
  });

  it('replays missed ticks with catch_up, oldest first and at most max_catch_up of them', async () => {
    const ledger = new MemoryTickLedger();
    const t = timer({ schedule: { kind: 'interval', everyMs: 1_000 }, catchUp: true, maxCatchUp: 3 });
    const now = Date.now();
    const before = Math.floor(now / 1_000) * 1_000 - 10_000;
    const c = await ledger.claim('acme/dev/tick', before, 'old', 100);
    if (c.status === 'won') await ledger.confirm('acme/dev/tick', before, c.fence);
    const runs: Run[] = [];
    const loop = replica('a', ledger, runs, t);
    await loop.start();
    await until(() => runs.length >= 3);
    expect(runs.slice(0, 3).map((r) => r.catchUp)).toEqual([true, true, true]);
    const ticks = runs.slice(0, 3).map((r) => r.tick);
    expect(ticks).toEqual([...ticks].sort((x, y) => x - y));
    expect(ticks[2]).toBeLessThanOrEqual(now);
    expect(ticks[0]).toBeGreaterThan(before + 5_000);

    const plain = new MemoryTickLedger();
    const c2 = await plain.claim('acme/dev/tick', before, 'old', 100);
    if (c2.status === 'won') await plain.confirm('acme/dev/tick', before, c2.fence);
    const runs2: Run[] = [];
    const l2 = replica('b', plain, runs2, { ...t, catchUp: false });
    await l2.start();
    await until(() => runs2.length >= 1, 2_500);
    expect(runs2[0]!.catchUp).toBe(false);
    expect(runs2[0]!.tick).toBeGreaterThan(now);
  });
});
