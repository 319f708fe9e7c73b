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

  it('caps each label on its own', () => {
    const g = new LabelGuard(1);
    expect(g.bound({ tenant: 'a', channel: 'x' })).toEqual({ tenant: 'a', channel: 'x' });
    expect(g.bound({ tenant: 'a', channel: 'y' })).toEqual({ tenant: 'a', channel: 'other' });
    expect(g.bound({ tenant: 'b', channel: 'x' })).toEqual({ tenant: 'other', channel: 'x' });
  });

  it("hands back a new set, leaving the caller's untouched", () => {
    const g = new LabelGuard(0);
    const attrs = { tenant: 'a' };
    expect(g.bound(attrs)).toEqual({ tenant: 'other' });
    expect(attrs).toEqual({ tenant: 'a' });
  });
});
