import { BackendOptions } from '../backend-options.js';
import type { SecretsBackend, SecretsBackendFactory } from '../secrets-backend.js';
import { describeCause, SecretBackendError } from '../secrets.errors.js';

/**
 * A backend whose client library is imported when it is first used: a runner holds the SDKs of
 * the stores its bundle binds, not of every cloud (together about 25 MB of heap and 0.6 s of
 * start-up; docs/operations.md, "Benchmark"). The bundle's options are checked before, when the
 * factory makes this, so a bad binding still fails at bundle load.
 */
export class LazySecretsBackend implements SecretsBackend {
  private loading?: Promise<SecretsBackend>;

  constructor(
    readonly kind: string,
    private readonly load: () => Promise<SecretsBackend>,
  ) {}

  async get(name: string): Promise<string | undefined> {
    let backend: SecretsBackend;
    try {
      backend = await this.backend();
    } catch (e) {
      throw new SecretBackendError(this.kind, name, `its client did not load: ${describeCause(e)}`);
    }
    return backend.get(name);
  }

  async health(): Promise<{ up: boolean; details: Record<string, unknown> }> {
    // Before first use there is nothing to ask, and loading an SDK to answer would defeat the point.
    if (!this.loading) return { up: true, details: { kind: this.kind, loaded: false } };
    try {
      const backend = await this.loading;
      return (await backend.health?.()) ?? { up: true, details: { kind: this.kind } };
    } catch (e) {
      return { up: false, details: { kind: this.kind, error: describeCause(e) } };
    }
  }

  async close(): Promise<void> {
    const backend = await this.loading?.catch(() => undefined);
    await backend?.close?.();
  }

  /** One load for concurrent first calls; a failed load is tried again by the next call. */
  private backend(): Promise<SecretsBackend> {
    this.loading ??= this.load().catch((e: unknown) => {
      this.loading = undefined;
      throw e;
    });
    return this.loading;
  }
}

/**
 * A factory's `create` for a backend whose client loads at the first read: the binding's options
 * are parsed now, so a bad binding still fails at bundle load.
 */
export function createLazily<O>(
  kind: string,
  parse: (o: BackendOptions) => O,
  load: (opts: O) => Promise<SecretsBackend>,
): SecretsBackendFactory['create'] {
  return (tenant, options, bundleDir) => {
    const opts = parse(new BackendOptions(kind, tenant, options, bundleDir));
    return new LazySecretsBackend(kind, () => load(opts));
  };
}
