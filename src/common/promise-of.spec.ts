import { describe, expect, it } from 'vitest';
import { promiseOf } from './promise-of.js';

describe('promiseOf', () => {
  it("hands back the callee's own promise", () => {
    const p = Promise.resolve(7);
    expect(promiseOf(() => p)).toBe(p);
  });

  it('turns a synchronous throw into a rejection with the same error', async () => {
    const err = new Error('thrown before any promise');
    await expect(
      promiseOf(() => {
        throw err;
      }),
    ).rejects.toBe(err);
  });
});
