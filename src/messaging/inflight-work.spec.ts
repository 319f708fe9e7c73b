import { describe, expect, it } from 'vitest';
import { InProcessBus } from './in-process.bus.js';
import { countingHandlers, InflightWork } from './inflight-work.js';

/** A promise with its settle functions, to hold work in flight. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('InflightWork', () => {
  it('counts work while it runs and hands back its result or error', async () => {
    const w = new InflightWork();
    const ok = deferred<string>();
    const bad = deferred<string>();
    const a = w.track('processing', () => ok.promise);
    const b = w.track('busHandlers', () => bad.promise);
    expect([w.processing, w.busHandlers, w.total]).toEqual([1, 1, 2]);
    ok.resolve('done');
    bad.reject(new Error('boom'));
    await expect(a).resolves.toBe('done');
    await expect(b).rejects.toThrow('boom');
    expect(w.total).toBe(0);
  });

  it('turns a synchronous throw into a rejection and leaves nothing counted', async () => {
    const w = new InflightWork();
    const p = w.track('processing', () => {
      throw new Error('sync');
    });
    expect(w.processing).toBe(0);
    await expect(p).rejects.toThrow('sync');
  });

  it("counts a bus's deliveries until their handlers settle", async () => {
    const w = new InflightWork();
    const bus = countingHandlers(new InProcessBus(), w);
    const held = deferred<void>();
    let ran = 0;
    await bus.subscribe('a.b', () => {
      ran++;
      return held.promise;
    });
    await bus.publish('a.b', { n: 1 });
    expect([ran, w.busHandlers]).toEqual([1, 1]);
    held.resolve();
    await held.promise;
    await new Promise((r) => setImmediate(r));
    expect(w.busHandlers).toBe(0);
  });
});
