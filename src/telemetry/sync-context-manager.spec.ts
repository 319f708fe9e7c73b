import { createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { SyncContextManager } from './sync-context-manager.js';

const KEY = createContextKey('test');

describe('SyncContextManager', () => {
  it('makes a context active while the function runs and restores the previous one after', () => {
    const m = new SyncContextManager();
    const outer = ROOT_CONTEXT.setValue(KEY, 'outer');
    const inner = ROOT_CONTEXT.setValue(KEY, 'inner');
    const seen = m.with(outer, () => [
      m.active().getValue(KEY),
      m.with(inner, () => m.active().getValue(KEY)),
      m.active().getValue(KEY),
    ]);
    expect(seen).toEqual(['outer', 'inner', 'outer']);
    expect(m.active()).toBe(ROOT_CONTEXT);
  });

  it('restores the previous context when the function throws', () => {
    const m = new SyncContextManager();
    expect(() =>
      m.with(ROOT_CONTEXT.setValue(KEY, 'x'), () => {
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(m.active()).toBe(ROOT_CONTEXT);
  });

  it('does not follow a promise: after an await the context is the caller’s again', async () => {
    const m = new SyncContextManager();
    const after = await m.with(ROOT_CONTEXT.setValue(KEY, 'x'), async () => {
      const before = m.active().getValue(KEY);
      await Promise.resolve();
      return [before, m.active().getValue(KEY)];
    });
    expect(after).toEqual(['x', undefined]);
  });

  it('binds a function to a context, passing its arguments and this', () => {
    const m = new SyncContextManager();
    const bound = m.bind(ROOT_CONTEXT.setValue(KEY, 'bound'), function (this: { n: number }, k: number) {
      return [this.n + k, m.active().getValue(KEY)];
    });
    expect(bound.call({ n: 1 }, 2)).toEqual([3, 'bound']);
    expect(m.bind(ROOT_CONTEXT, 42)).toBe(42);
  });
});
