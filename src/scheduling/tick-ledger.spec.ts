import { describe, expect, it } from 'vitest';
import { MemoryTickLedger } from './tick-ledger.js';

describe('MemoryTickLedger', () => {
  it('gives a tick to one claimant, who renews and confirms it with its fence', async () => {
    let now = 0;
    const l = new MemoryTickLedger(() => now);
    const won = await l.claim('t', 1_000, 'a', 500);
    expect(won).toEqual({ status: 'won', fence: 1 });
    expect(await l.claim('t', 1_000, 'b', 500)).toEqual({ status: 'busy', tick: 1_000, retryInMs: 500 });
    now = 400;
    expect(await l.renew('t', 1_000, 1, 500)).toBe(true);
    now = 800;
    expect(await l.claim('t', 1_000, 'b', 500)).toEqual({ status: 'busy', tick: 1_000, retryInMs: 100 });
    expect(await l.confirm('t', 1_000, 1)).toBe(true);
    expect(await l.claim('t', 1_000, 'b', 500)).toEqual({ status: 'done' });
    expect(await l.lastDone('t')).toBe(1_000);
  });

  it('runs ticks in order: a later tick waits for the earlier one, an earlier one after a later is done', async () => {
    const l = new MemoryTickLedger(() => 0);
    await l.claim('t', 2_000, 'a', 500);
    expect(await l.claim('t', 3_000, 'b', 500)).toMatchObject({ status: 'busy', tick: 2_000 });
    expect(await l.claim('t', 1_000, 'b', 500)).toEqual({ status: 'done' });
  });

  it('reports an expired, unconfirmed claim as abandoned, and fences out its old holder', async () => {
    let now = 0;
    const l = new MemoryTickLedger(() => now);
    expect(await l.claim('t', 1_000, 'dead', 500)).toEqual({ status: 'won', fence: 1 });
    now = 600;
    expect(await l.claim('t', 2_000, 'b', 500)).toEqual({ status: 'abandoned', tick: 1_000 });
    expect(await l.claim('t', 1_000, 'b', 500)).toEqual({ status: 'won', fence: 2 });
    // The stalled first claimant wakes up: its lease and its confirm are refused.
    expect(await l.renew('t', 1_000, 1, 500)).toBe(false);
    expect(await l.confirm('t', 1_000, 1)).toBe(false);
    expect(await l.confirm('t', 1_000, 2)).toBe(true);
    expect(await l.claim('t', 2_000, 'b', 500)).toEqual({ status: 'won', fence: 3 });
  });

  it('keeps timers apart', async () => {
    const l = new MemoryTickLedger(() => 0);
    expect((await l.claim('a/dev/x', 1, 'r', 100)).status).toBe('won');
    expect((await l.claim('b/dev/x', 1, 'r', 100)).status).toBe('won');
    expect(await l.lastDone('c/dev/x')).toBeUndefined();
  });
});
