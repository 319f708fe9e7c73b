import { describe, expect, it } from 'vitest';
import type { SecretsBackend } from '../secrets-backend.js';
import { SecretBackendError } from '../secrets.errors.js';
import { LazySecretsBackend } from './lazy-secrets.backend.js';

/** A loaded backend that records what it was asked. */
function storeOf(values: Record<string, string>) {
  const store = {
    kind: 'cloud',
    closed: 0,
    get: async (name: string) => values[name],
    health: async () => ({ up: true, details: { kind: 'cloud', region: 'eu' } }),
    close: async () => {
      store.closed++;
    },
  } satisfies SecretsBackend & { closed: number };
  return store;
}

describe('LazySecretsBackend', () => {
  it('loads its client on the first read, once for concurrent reads, and reads through it', async () => {
    const store = storeOf({ api_key: 'k1', other: 'k2' });
    let loads = 0;
    const lazy = new LazySecretsBackend('cloud', async () => {
      loads++;
      return store;
    });
    expect(loads).toBe(0);
    await expect(Promise.all([lazy.get('api_key'), lazy.get('other'), lazy.get('absent')])).resolves.toEqual([
      'k1',
      'k2',
      undefined,
    ]);
    expect(loads).toBe(1);
    await lazy.get('api_key');
    expect(loads).toBe(1);
  });

  it('answers health without loading before first use, and the loaded backend after', async () => {
    let loads = 0;
    const lazy = new LazySecretsBackend('cloud', async () => {
      loads++;
      return storeOf({ a: 'b' });
    });
    await expect(lazy.health()).resolves.toEqual({ up: true, details: { kind: 'cloud', loaded: false } });
    expect(loads).toBe(0);
    await lazy.get('a');
    await expect(lazy.health()).resolves.toEqual({ up: true, details: { kind: 'cloud', region: 'eu' } });
  });

  it('turns a client that does not load into a backend error naming the secret, and tries again next time', async () => {
    let attempt = 0;
    const store = storeOf({ api_key: 'k1' });
    const lazy = new LazySecretsBackend('cloud', async () => {
      attempt++;
      if (attempt === 1) throw new Error("Cannot find package '@cloud/sdk'");
      return store;
    });
    const err = await lazy.get('api_key').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SecretBackendError);
    expect((err as SecretBackendError).message).toBe(
      "secrets backend 'cloud' could not read secret 'api_key': its client did not load: Cannot find package '@cloud/sdk'",
    );
    await expect(lazy.get('api_key')).resolves.toBe('k1');
    expect(attempt).toBe(2);
  });

  it('closes the loaded client, and loads nothing to close one never used', async () => {
    let loads = 0;
    const store = storeOf({ a: 'b' });
    const unused = new LazySecretsBackend('cloud', async () => {
      loads++;
      return store;
    });
    await unused.close();
    expect(loads).toBe(0);
    const used = new LazySecretsBackend('cloud', async () => store);
    await used.get('a');
    await used.close();
    expect(store.closed).toBe(1);
  });
});
