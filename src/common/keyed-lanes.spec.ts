import { describe, expect, it } from 'vitest';
import { KeyedLanes } from './keyed-lanes.js';

const tick = () => new Promise<void>((r) => setTimeout(r, 1));

describe('KeyedLanes', () => {
  it('runs one task of a key at a time, in order, and different keys at once', async () => {
    const lanes = new KeyedLanes();
    const log: string[] = [];
    let concurrentA = 0;
    let peakA = 0;
    let peakAll = 0;
    let now = 0;
    const task = (key: string, i: number) => async () => {
      now++;
      peakAll = Math.max(peakAll, now);
      if (key === 'a') peakA = Math.max(peakA, ++concurrentA);
      await tick();
      log.push(`${key}${i}`);
      if (key === 'a') concurrentA--;
      now--;
    };
    const all: Promise<void>[] = [];
    for (let i = 0; i < 5; i++) {
      all.push(lanes.add('a', task('a', i)));
      all.push(lanes.add('b', task('b', i)));
    }
    expect(lanes.size).toBe(10);
    await Promise.all(all);
    expect(log.filter((x) => x.startsWith('a'))).toEqual(['a0', 'a1', 'a2', 'a3', 'a4']);
    expect(log.filter((x) => x.startsWith('b'))).toEqual(['b0', 'b1', 'b2', 'b3', 'b4']);
    expect(peakA).toBe(1);
    expect(peakAll).toBe(2);
    expect(lanes.size).toBe(0);
    expect(lanes.lanes).toBe(0);
  });

  it('keeps a lane going after a task fails, and reports the failure to its caller', async () => {
    const lanes = new KeyedLanes();
    const ran: number[] = [];
    const failed = lanes.add('k', async () => {
      ran.push(1);
      throw new Error('boom');
    });
    const next = lanes.add('k', async () => {
      ran.push(2);
    });
    await expect(failed).rejects.toThrow('boom');
    await next;
    expect(ran).toEqual([1, 2]);
  });

  it('idle() waits for tasks added while waiting', async () => {
    const lanes = new KeyedLanes();
    let done = 0;
    void lanes.add('x', async () => {
      await tick();
      void lanes.add('y', async () => {
        await tick();
        done++;
      });
      done++;
    });
    await lanes.idle();
    expect(done).toBe(2);
  });
});
