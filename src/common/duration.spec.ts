import { describe, expect, it } from 'vitest';
import { toMillis } from './duration.js';

describe('toMillis', () => {
  it('reads milliseconds and unit strings', () => {
    expect(toMillis(5000)).toBe(5000);
    expect(toMillis('5s')).toBe(5000);
    expect(toMillis('1m30s')).toBe(90_000);
    expect(toMillis('250ms')).toBe(250);
    expect(toMillis('1.5h')).toBe(5_400_000);
  });

  it('refuses anything else', () => {
    for (const bad of [0, -1, Number.NaN, '', '5', '5 s', 's', '0s', 'soon', null, undefined, {}])
      expect(toMillis(bad)).toBeUndefined();
  });
});
