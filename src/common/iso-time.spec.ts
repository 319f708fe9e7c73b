import { describe, expect, it } from 'vitest';
import { isoNow } from './iso-time.js';

describe('isoNow', () => {
  it('formats the given or current millisecond like Date#toISOString', () => {
    for (const ms of [0, 1_700_000_000_123, 1_700_000_000_123, 1_700_000_000_124, 253_402_300_799_999])
      expect(isoNow(ms)).toBe(new Date(ms).toISOString());
    const before = Date.now();
    const now = Date.parse(isoNow());
    expect(now).toBeGreaterThanOrEqual(before);
    expect(now).toBeLessThanOrEqual(Date.now());
  });
});
