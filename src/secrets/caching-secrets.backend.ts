import { Logger } from '@nestjs/common';
import { GreenticError } from '../common/errors.js';
import type { SecretsBackend } from './secrets-backend.js';
import { describeCause, SecretBackendError } from './secrets.errors.js';

export interface SecretsCacheOptions {
  /** How long a read value is served without asking the backend. */
  ttlMs: number;
  /** Age after which a read still answers from cache but refreshes in the background. */
  refreshAfterMs: number;
  /** After expiry, how long the last value is still served while the backend fails. */
  staleMs: number;
  /** How long "no such secret" is remembered, so a missing name does not hammer the backend. */
  missingTtlMs: number;
  now?: () => number;
}

export const DEFAULT_CACHE: Omit<SecretsCacheOptions, 'now'> = {
  ttlMs: 300_000,
  refreshAfterMs: 240_000,
  staleMs: 3_600_000,
  missingTtlMs: 30_000,
};

export interface SecretsCacheStats {
  entries: number;
  hits: number;
  misses: number;
  fetches: number;
  backgroundRefreshes: number;
  staleServed: number;
  errors: number;
}

interface Entry {
  value: string | undefined;
  fetchedAt: number;
}

/**
 * TTL cache in front of a backend: fresh values answer from memory, ageing ones answer from memory
 * and refresh in the background, expired ones are fetched again, and when that fails the last
 * value keeps being served for `staleMs` (stale-while-error) before the error reaches the caller.
 * Concurrent reads of one name share a single backend request.
 */
export class CachingSecretsBackend implements SecretsBackend {
  private readonly logger = new Logger('SecretsCache');
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string | undefined>>();
  private readonly now: () => number;
  private readonly counters = {
    hits: 0,
    misses: 0,
    fetches: 0,
    backgroundRefreshes: 0,
    staleServed: 0,
    errors: 0,
  };

  constructor(
    readonly inner: SecretsBackend,
    private readonly options: SecretsCacheOptions,
    /** For log lines: which tenant this cache serves. */
    private readonly tenantId: string,
    private readonly onValue: (value: string) => void = () => {},
  ) {
    this.now = options.now ?? Date.now;
  }

  get kind(): string {
    return this.inner.kind;
  }

  async get(name: string): Promise<string | undefined> {
    const e = this.entries.get(name);
    const now = this.now();
    if (e) {
      const age = now - e.fetchedAt;
      const ttl = e.value === undefined ? this.options.missingTtlMs : this.options.ttlMs;
      if (age < ttl) {
        this.counters.hits++;
        if (e.value !== undefined && age >= this.options.refreshAfterMs) this.refreshInBackground(name);
        return e.value;
      }
    }
    this.counters.misses++;
    try {
      return await this.fetch(name);
    } catch (err) {
      if (e?.value !== undefined && now - e.fetchedAt < this.options.ttlMs + this.options.staleMs) {
        this.counters.staleServed++;
        this.logger.warn(
          {
            tenant: this.tenantId,
            backend: this.kind,
            secret: name,
            ageMs: now - e.fetchedAt,
            err: (err as Error).message,
          },
          'secrets backend failed; serving the cached value within the stale window',
        );
        return e.value;
      }
      throw err;
    }
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    const h = this.inner.health ? await this.inner.health() : { up: true, details: { kind: this.kind } };
    return { up: h.up, details: { ...h.details, cache: this.stats() } };
  }

  stats(): SecretsCacheStats {
    return { entries: this.entries.size, ...this.counters };
  }

  /** Drops everything cached (rotation forced by an operator, tenant reload). */
  clear(): void {
    this.entries.clear();
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.inflight.values()]);
    await this.inner.close?.();
  }

  private refreshInBackground(name: string): void {
    if (this.inflight.has(name)) return;
    this.counters.backgroundRefreshes++;
    this.fetch(name).catch((err: unknown) => {
      this.logger.warn(
        { tenant: this.tenantId, backend: this.kind, secret: name, err: (err as Error).message },
        'background refresh of a secret failed; the cached value is kept until it expires',
      );
    });
  }

  private fetch(name: string): Promise<string | undefined> {
    let p = this.inflight.get(name);
    if (!p) {
      this.counters.fetches++;
      p = this.inner
        .get(name)
        .then(
          (value) => {
            if (value !== undefined) this.onValue(value);
            this.entries.set(name, { value, fetchedAt: this.now() });
            return value;
          },
          (err: unknown) => {
            this.counters.errors++;
            throw err instanceof GreenticError
              ? err
              : new SecretBackendError(this.kind, name, describeCause(err));
          },
        )
        .finally(() => this.inflight.delete(name));
      this.inflight.set(name, p);
    }
    return p;
  }
}
