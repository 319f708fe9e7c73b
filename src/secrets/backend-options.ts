import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../common/errors.js';
import type { TenantCtx } from '../core/tenant-ctx.js';

/**
 * Typed reads of one tenant's `secrets.options` from the bundle, with errors that name the tenant,
 * the backend and the key. Credentials are never written in the bundle: options name the
 * environment variable or file that holds them (`*_env`, `*_file`).
 */
export class BackendOptions {
  constructor(
    readonly backend: string,
    readonly tenant: TenantCtx,
    readonly raw: Record<string, unknown>,
    readonly bundleDir: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  fail(key: string, expected: string): never {
    throw new ConfigError(
      `tenant '${this.tenant.tenantId}': secrets backend '${this.backend}': option '${key}' ${expected}`,
      {
        tenant: this.tenant.tenantId,
        backend: this.backend,
        key,
      },
    );
  }

  string(key: string): string | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' || v.length === 0) this.fail(key, 'must be a non-empty string');
    return v;
  }

  requireString(key: string, fallbackEnv?: string): string {
    const v = this.string(key) ?? (fallbackEnv ? this.env[fallbackEnv] : undefined);
    if (!v) this.fail(key, `is required${fallbackEnv ? ` (or set ${fallbackEnv})` : ''}`);
    return v;
  }

  number(key: string, fallback: number, min = 0): number {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min) this.fail(key, `must be a number ≥ ${min}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(key, 'must be true or false');
    return v;
  }

  object(key: string): BackendOptions {
    const v = this.raw[key];
    if (v === undefined || v === null)
      return new BackendOptions(this.backend, this.tenant, {}, this.bundleDir, this.env);
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(key, 'must be a mapping');
    return new BackendOptions(
      this.backend,
      this.tenant,
      v as Record<string, unknown>,
      this.bundleDir,
      this.env,
    );
  }

  /** A path option, resolved against the bundle's folder. */
  path(key: string): string | undefined {
    const v = this.string(key);
    return v === undefined ? undefined : path.resolve(this.bundleDir, v);
  }

  /**
   * A credential given indirectly: `<key>_env` names an environment variable, `<key>_file` a file.
   * Read when called (not at start-up) so rotated files are picked up on re-authentication.
   */
  credential(key: string, defaultEnv?: string): () => string {
    const envName = this.string(`${key}_env`) ?? defaultEnv;
    const file = this.path(`${key}_file`);
    if (this.raw[key] !== undefined)
      this.fail(key, `must not hold a credential in the bundle; use '${key}_env' or '${key}_file'`);
    if (!envName && !file) this.fail(`${key}_env`, `or '${key}_file' is required`);
    return () => {
      if (file) {
        try {
          return readFileSync(file, 'utf8').trim();
        } catch (e) {
          throw new ConfigError(
            `tenant '${this.tenant.tenantId}': secrets backend '${this.backend}': cannot read '${key}_file' ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
          );
        }
      }
      const v = this.env[envName!];
      if (!v) {
        throw new ConfigError(
          `tenant '${this.tenant.tenantId}': secrets backend '${this.backend}': environment variable ${envName} (option '${key}_env') is not set`,
        );
      }
      return v;
    };
  }
}
