import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { RunnerProcess } from './support/runner-process.js';
import { writeTempBundle } from './support/temp-bundle.js';
import { TickCollector, tickTime, type TickCallback } from './support/tick-collector.js';

/**
 * A timer ticking every second with two replicas, each its own process sharing the machine's Redis
 * (tick ledger and sessions) under a key prefix no other test uses. Every tick runs exactly once,
 * counted by tick id; then the replica that ran the latest tick is killed with SIGKILL, and the
 * survivor keeps every later tick running, exactly once, with no gap.
 */

const BEAT = `id: beat
type: timer
nodes:
  say:
    templating.handlebars:
      text: "{{message.action.tick.replica}}|{{message.action.tick.fence}}"
`;

const prefix = uniqueRedisPrefix('timers-replicas');
let collector: TickCollector;
let replicas: RunnerProcess[] = [];

beforeAll(async () => {
  await requireRedis();
  collector = await TickCollector.start();
  const bundle = writeTempBundle({
    packs: [{ id: 'clock', flows: { 'beat.ygtc': BEAT } }],
    tenants: {
      clock: {
        packs: ['clock'],
        channels: {},
        timers: {
          dev: {
            beat: { pack: 'clock', flow: 'beat', interval: '1s', settings: { callback_url: collector.url } },
          },
        },
      },
    },
  });
  const env = {
    GREENTIC_BUNDLE: bundle,
    GREENTIC_BUS: 'memory',
    GREENTIC_SESSIONS: 'redis',
    GREENTIC_COORDINATION: 'redis',
    REDIS_URL: SHARED_REDIS_URL,
    GREENTIC_REDIS_PREFIX: prefix,
    GREENTIC_TIMER_LEASE_MS: 2_000,
  };
  replicas = await Promise.all([RunnerProcess.start('A', env), RunnerProcess.start('B', env)]);
}, 180_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.kill('SIGKILL')));
  await collector?.close();
  await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
});

/** Executions per tick: a run is its (replica, fence) pair; an egress redelivery repeats the same pair. */
function executions(calls: TickCallback[]): Map<number, Set<string>> {
  const out = new Map<number, Set<string>>();
  for (const c of calls) {
    const t = tickTime(c.tick);
    let s = out.get(t);
    if (!s) out.set(t, (s = new Set()));
    s.add(c.replies[0]?.text ?? '');
  }
  return out;
}

describe('a timer with two replicas', () => {
  it('runs every tick exactly once, and a replica killed mid-way changes nothing', async () => {
    // Count from the first tick both replicas were up for.
    const from = Date.now() + 1_000;
    const window = (cs: TickCallback[]) => cs.filter((c) => tickTime(c.tick) >= from);
    await collector.waitFor(
      (cs) => executions(window(cs)).size >= 5,
      20_000,
      'five ticks with both replicas',
    );

    const latest = window(collector.calls).at(-1)!;
    const runner = latest.replies[0]!.text!.split('|')[0]!;
    const victim = replicas.find((r) => runner.includes(`:${r.pid}:`)) ?? replicas[0]!;
    const exit = await victim.kill('SIGKILL');
    expect(exit.signal).toBe('SIGKILL');
    const killedAt = Date.now();

    await collector.waitFor((cs) => executions(window(cs)).size >= 10, 25_000, 'ten ticks in all');
    const runs = executions(window(collector.calls));
    const ticks = [...runs.keys()].sort((a, b) => a - b).slice(0, 10);
    expect(ticks).toHaveLength(10);
    // Consecutive seconds: no tick lost, before or after the kill.
    expect(ticks.every((t, i) => i === 0 || t - ticks[i - 1]! === 1_000)).toBe(true);
    // Exactly one execution per tick id.
    for (const t of ticks) expect([...runs.get(t)!], new Date(t).toISOString()).toHaveLength(1);
    // After the kill only the survivor runs ticks.
    const survivor = replicas.find((r) => r !== victim)!;
    const later = ticks.filter((t) => t > killedAt + 1_000);
    expect(later.length).toBeGreaterThan(0);
    for (const t of later) expect([...runs.get(t)!][0]).toContain(`:${survivor.pid}:`);
  }, 90_000);
});
