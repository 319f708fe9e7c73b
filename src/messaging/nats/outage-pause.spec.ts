import { afterEach, describe, expect, it, vi } from 'vitest';
import { OutagePause } from './outage-pause.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('OutagePause', () => {
  it('ends every running pause at a reconnect, and leaves no timer behind', async () => {
    vi.useFakeTimers();
    const pause = new OutagePause();
    const ended: string[] = [];
    const a = pause.wait(30_000).then(() => ended.push('a'));
    const b = pause.wait(10_000).then(() => ended.push('b'));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(ended).toEqual([]);
    pause.reconnected();
    await Promise.all([a, b]);
    expect(ended).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(0);
    expect(pause.size).toBe(0);
  });

  it('runs its full length without a reconnect, and a later pause is not ended by an earlier reconnect', async () => {
    vi.useFakeTimers();
    const pause = new OutagePause();
    pause.reconnected();
    let done = false;
    const p = pause.wait(5_000).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    // A pause that ran its length is gone too: a long outage without a reconnect holds nothing.
    expect(pause.size).toBe(0);
  });
});
