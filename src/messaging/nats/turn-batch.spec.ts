import { describe, expect, it } from 'vitest';
import { TurnBatch } from './turn-batch.js';

describe('TurnBatch', () => {
  it('runs the sends of one turn together at its end, in the order queued', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    batch.add(() => ran.push('a'));
    await Promise.resolve();
    batch.add(() => ran.push('b'));
    expect(ran).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['a', 'b']);
    batch.add(() => ran.push('c'));
    await new Promise((r) => setImmediate(r));
    expect(ran).toEqual(['a', 'b', 'c']);
  });

  it('runs the rest of a turn when one send throws', async () => {
    const batch = new TurnBatch();
    const ran: string[] = [];
    batch.add(() => {
      throw new Error('connection closed');
    });
    batch.add(() => ran.push('b'));
    await expect(
      batch.run(() => {
        throw new Error('closed');
      }),
    ).rejects.toThrow('closed');
    expect(ran).toEqual(['b']);
  });

  it("settles run() with its send's result or error", async () => {
    const batch = new TurnBatch();
    await expect(batch.run(() => Promise.resolve(7))).resolves.toBe(7);
    await expect(batch.run(() => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
  });
});
