import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import {
  deleteRedisPrefix,
  requireRedis,
  SHARED_REDIS_URL,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';
import { TickCollector, tickTime, type TickCallback } from './support/tick-collector.js';

/**
 * Timers on one replica: ticks run the bound flow through the message path and post their replies
 * to the timer's callback; a replica that was down does not replay the ticks it missed, unless the
 * binding asks for catch-up (the tick ledger, in Redis here, remembers the last tick run).
 */

const BEAT = `id: beat
type: timer
nodes:
  say:
    templating.handlebars:
      text: "{{message.action.tick.id}}|{{message.action.tick.catchUp}}|{{message.action.input.label}}|{{message.provider}}"
`;

let collector: TickCollector;
const prefix = uniqueRedisPrefix('timers');

beforeAll(async () => {
  await requireRedis();
  collector = await TickCollector.start();
});

afterAll(async () => {
  await collector?.close();
  await deleteRedisPrefix(SHARED_REDIS_URL, prefix);
});

function bundle(timer: string, catchUp: boolean): string {
  return writeTempBundle({
    packs: [{ id: 'clock', flows: { 'beat.ygtc': BEAT } }],
    tenants: {
      clock: {
        packs: ['clock'],
        channels: { web: { pack: 'clock', flow: 'beat' } },
        timers: {
          dev: {
            [timer]: {
              pack: 'clock',
              flow: 'beat',
              interval: '1s',
              catch_up: catchUp,
              input: { label: timer },
              settings: { callback_url: collector.url },
            },
          },
        },
      },
    },
  });
}

async function start(
  file: string,
  coordination: 'memory' | 'redis',
): Promise<{ app: INestApplication; url: string }> {
  return startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: file,
      LOG_LEVEL: 'silent',
      GREENTIC_COORDINATION: coordination,
      REDIS_URL: SHARED_REDIS_URL,
      GREENTIC_REDIS_PREFIX: prefix,
    },
  });
}

const of = (timer: string) => (cs: TickCallback[]) => cs.filter((c) => c.timer === timer);

describe('a timer on one replica', () => {
  it('runs its flow every second through the message path, with the tick in message.action', async () => {
    const { app, url } = await start(bundle('beat_mem', false), 'memory');
    try {
      await collector.waitFor((cs) => of('beat_mem')(cs).length >= 3, 10_000, 'three ticks');
      const ticks = of('beat_mem')(collector.calls);
      const times = ticks.map((c) => tickTime(c.tick));
      expect(times.every((t, i) => i === 0 || t - times[i - 1]! === 1_000)).toBe(true);
      for (const c of ticks) {
        expect(c.status).toBe('completed');
        expect(c.replies).toEqual([{ text: `${c.tick}|false|beat_mem|timer` }]);
      }
      // A timer has no webhook: nothing outside the runner can fire it.
      const r = await fetch(`${url}/webhooks/timer/clock/dev/default/beat_mem`, {
        method: 'POST',
        body: '{}',
      });
      expect(r.status).toBe(404);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('timer_no_webhook');
    } finally {
      await app.close();
    }
  });
});

describe('a replica that was down', () => {
  async function downtime(
    timer: string,
    catchUp: boolean,
  ): Promise<{ before: number; down: [number, number]; after: TickCallback[] }> {
    const file = bundle(timer, catchUp);
    const first = await start(file, 'redis');
    await collector.waitFor((cs) => of(timer)(cs).length >= 2, 10_000, `${timer}: two ticks`);
    await first.app.close();
    const stopped = Date.now();
    const before = of(timer)(collector.calls).length;
    // Down across three ticks.
    await new Promise((r) => setTimeout(r, 3_200));
    const restarted = Date.now();
    const second = await start(file, 'redis');
    try {
      await collector.waitFor(
        (cs) => of(timer)(cs).some((c) => tickTime(c.tick) > restarted),
        10_000,
        `${timer}: a tick after the restart`,
      );
    } finally {
      await second.app.close();
    }
    return { before, down: [stopped, restarted], after: of(timer)(collector.calls).slice(before) };
  }

  it('does not replay the ticks it missed', async () => {
    const { down, after } = await downtime('beat_skip', false);
    const missed = after.filter((c) => tickTime(c.tick) > down[0] && tickTime(c.tick) < down[1]);
    expect(missed).toEqual([]);
    expect(after.every((c) => c.replies[0]?.text?.split('|')[1] === 'false')).toBe(true);
  });

  it('replays them, once each and in order, when the binding asks for catch-up', async () => {
    const { down, after } = await downtime('beat_catch', true);
    const replayed = after.filter((c) => c.replies[0]?.text?.split('|')[1] === 'true');
    const times = replayed.map((c) => tickTime(c.tick));
    // Three ticks fell in the 3.2 s gap (plus any that fell due while the app was starting).
    expect(times.length).toBeGreaterThanOrEqual(3);
    expect(times.filter((t) => t > down[0] && t < down[1]).length).toBeGreaterThanOrEqual(3);
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const all = of('beat_catch')(collector.calls).map((c) => c.tick);
    expect(new Set(all).size).toBe(all.length);
    const allTimes = all.map(tickTime).sort((a, b) => a - b);
    expect(allTimes.every((t, i) => i === 0 || t - allTimes[i - 1]! === 1_000)).toBe(true);
  });
});
