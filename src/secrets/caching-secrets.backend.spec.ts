import { describe, expect, it } from 'vitest';
import { CachingSecretsBackend } from './caching-secrets.backend.js';
import type { SecretsBackend } from './secrets-backend.js';
import { SecretBackendError } from './secrets.errors.js';

class ScriptedBackend implements SecretsBackend {
  readonly kind = 'scripted';
  calls = 0;
  values = new Map<string, string>();
  failing: Error | null = null;
  gate: Promise<void> = Promise.resolve();

  async get(name: string): Promise<string | undefined> {
    this.calls++;
    await this.gate;
    if (this.failing) throw this.failing;
    return this.values.get(name);
  }
}

function setup() {
  const inner = new ScriptedBackend();
  const now = { t: 0 };
  const seen: string[] = [];
  const cache = new CachingSecretsBackend(
    inner,
    { ttlMs: 100, refreshAfterMs: 80, staleMs: 50, missingTtlMs: 20, now: () => now.t },
    't1',
    (v) => seen.push(v),
  );
  return { inner, now, cache, seen };
}

describe('CachingSecretsBackend', () => {
  it('shares one backend request between concurrent reads of a name', async () => {
    const { inner, cache } = setup();
    inner.values.set('a', 'value-a');
    let open!: () => void;
    inner.gate = new Promise((r) => (open = r));
    const reads = Promise.all([cache.get('a'), cache.get('a'), cache.get('a')]);
    open();
    expect(await reads).toEqual(['value-a', 'value-a', 'value-a']);
    expect(inner.calls).toBe(1);
  });

  it('hands every value read to the redactor hook', async () => {
    const { inner, cache, seen } = setup();
    inner.values.set('a', 'value-a');
    await cache.get('a');
    expect(seen).toEqual(['value-a']);
  });

  it('remembers a missing name for missingTtl only', async () => {
    const { inner, now, cache } = setup();
    expect(await cache.get('nope')).toBeUndefined();
    now.t = 19;
    expect(await cache.get('nope')).toBeUndefined();
    expect(inner.calls).toBe(1);
    inner.values.set('nope', 'now-there');
    now.t = 21;
    expect(await cache.get('nope')).toBe('now-there');
    expect(inner.calls).toBe(2);
  });

  it('serves stale only inside ttl + stale window, and wraps unknown errors with backend and name', async () => {
    const { inner, now, cache } = setup();
    inner.values.set('a', 'value-a');
    await cache.get('a');
    inner.failing = new Error('connect ECONNREFUSED 127.0.0.1:1');
    now.t = 149;
    expect(await cache.get('a')).toBe('value-a');
    now.t = 150;
    const err = await cache.get('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretBackendError);
    expect((err as Error).message).toBe(
      "secrets backend 'scripted' could not read secret 'a': connect ECONNREFUSED 127.0.0.1:1",
    );
    expect(cache.stats()).toMatchObject({ staleServed: 1, errors: 2 });
  });

  it('a failed background refresh keeps the cached value', async () => {
    const { inner, now, cache } = setup();
    inner.values.set('a', 'value-a');
    await cache.get('a');
    inner.failing = new Error('boom');
    now.t = 90;
    expect(await cache.get('a')).toBe('value-a');
    await new Promise((r) => setImmediate(r));
    expect(cache.stats().backgroundRefreshes).toBe(1);
    expect(await cache.get('a')).toBe('value-a');
  });
});
