import { describe, expect, it } from 'vitest';
import { LabelGuard } from './label-guard.js';

describe('LabelGuard', () => {
  it('reports values past the per-label cap as other, and keeps known ones', () => {
    const g = new LabelGuard(2);
    expect(g.bound({ tenant: 'a', outcome: 'ok' })).toEqual({ tenant: 'a', outcome: 'ok' });
    expect(g.bound({ tenant: 'b', outcome: 'ok' })).toEqual({ tenant: 'b', outcome: 'ok' });
    expect(g.bound({ tenant: 'c', outcome: 'ok' })).toEqual({ tenant: 'other', outcome: 'ok' });
    expect(g.bound({ tenant: 'a', outcome: 'ok' })).toEqual({ tenant: 'a', outcome: 'ok' });
  });

  it('answers the same labels for an owner and key, built once', () => {
    const g = new LabelGuard();
    const owner = {};
    let built = 0;
    const make = () => (built++, { tenant: 'acme', outcome: 'ok' });
    expect(g.boundFor(owner, 'k', make)).toEqual({ tenant: 'acme', outcome: 'ok' });
    expect(g.boundFor(owner, 'k', make)).toBe(g.boundFor(owner, 'k', make));
    expect(built).toBe(1);
  });
});
