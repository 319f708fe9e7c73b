import type { TenantCtx } from '../core/tenant-ctx.js';

/**
 * A secret store. Values never reach logs, errors, traces or admin output.
 * `get` answers undefined for a name the store does not have, and throws (a SecretBackendError)
 * when the store cannot answer: the two must stay distinct so the cache can serve stale values
 * only for the second.
 */
export interface SecretsBackend {
  readonly kind: string;
  /** `name` is already mapped to the backend's own name; undefined when absent. */
  get(name: string): Promise<string | undefined>;
  health?(): Promise<{ up: boolean; details: Record<string, unknown> }>;
  /** Releases clients and timers. */
  close?(): Promise<void>;
}

/** Makes a backend for one tenant from its bundle binding. */
export interface SecretsBackendFactory {
  readonly kind: string;
  /** Mapping used when the binding sets no `name_template` (some stores forbid `/` in names). */
  readonly defaultNameTemplate?: string;
  create(tenant: TenantCtx, options: Record<string, unknown>, bundleDir: string): SecretsBackend;
}

export const SECRETS_BACKEND_FACTORIES = Symbol('SECRETS_BACKEND_FACTORIES');
