import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ConfigError, SecretAccessError } from '../common/errors.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import type { SecretsBinding } from '../tenancy/bundle.types.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { BackendOptions } from './backend-options.js';
import { envVarName } from './backends/env-secrets.backend.js';
import {
  CachingSecretsBackend,
  DEFAULT_CACHE,
  type SecretsCacheOptions,
  type SecretsCacheStats,
} from './caching-secrets.backend.js';
import { checkNameTemplate, DEFAULT_NAME_TEMPLATE, renderSecretName } from './secret-name.js';
import { secretRedactor, type SecretRedactor } from './secret-redactor.js';
import { SECRETS_BACKEND_FACTORIES, type SecretsBackendFactory } from './secrets-backend.js';

/** Default mapping from a logical secret name to the backend's name. */
export function mapSecretName(tenant: TenantCtx, name: string): string {
  return renderSecretName(DEFAULT_NAME_TEMPLATE, tenant, name);
}

/** Options every backend shares; the rest of `secrets.options` belongs to the backend. */
const COMMON_OPTIONS = new Set(['name_template', 'cache']);

interface TenantSecrets {
  /** The binding this was built from: a reloaded bundle brings a new object, and a rebuild. */
  binding: SecretsBinding;
  template: string;
  backend: CachingSecretsBackend;
}

export interface TenantSecretsStatus {
  tenant: string;
  backend: string;
  nameTemplate: string;
  cache: SecretsCacheStats;
}

/**
 * Secrets scoped by tenant: each tenant reads through its own backend instance and cache, under
 * its own name mapping, and only names its binding allows. Values are never logged or put in
 * errors; every value read is handed to the redactor so the log and span sinks can blank it.
 */
@Injectable()
export class SecretsService implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SecretsService.name);
  private readonly tenants = new Map<string, TenantSecrets>();
  private readonly factories: Map<string, SecretsBackendFactory>;
  /** Tests swap the clock to step through TTLs without sleeping. */
  clock: () => number = Date.now;
  /** Process-wide, because the log and span sinks that use it exist before the container. */
  private readonly redactor: SecretRedactor = secretRedactor;

  constructor(
    private readonly registry: BundleRegistry,
    @Inject(SECRETS_BACKEND_FACTORIES) factories: SecretsBackendFactory[],
  ) {
    this.factories = new Map(factories.map((f) => [f.kind, f]));
  }

  /** Builds every tenant's backend at start-up, so a bad binding stops the process naming its key. */
  onModuleInit(): void {
    for (const t of this.registry.tenants()) this.forTenant(t.id);
  }

  /**
   * Reads `name` for `tenant`. With `allowed`, a name outside the list is refused before any
   * backend is asked. Missing secrets answer undefined; an unreachable backend throws
   * SecretBackendError once no cached value is left within the stale window.
   */
  async get(tenant: TenantCtx, name: string, allowed?: readonly string[]): Promise<string | undefined> {
    if (allowed && !allowed.includes(name)) {
      this.logger.warn(
        { tenant: tenant.tenantId, env: tenant.envId, secret: name },
        'secret denied by allow-list',
      );
      throw new SecretAccessError('secret_denied', `secret '${name}' is not allowed for this binding`, {
        tenant: tenant.tenantId,
        name,
      });
    }
    const t = this.forTenant(tenant.tenantId);
    return t.backend.get(renderSecretName(t.template, tenant, name));
  }

  /** Like get, but a missing secret is an error naming backend and name (never a value). */
  async require(tenant: TenantCtx, name: string, allowed?: readonly string[]): Promise<string> {
    const v = await this.get(tenant, name, allowed);
    if (v === undefined) {
      const t = this.forTenant(tenant.tenantId);
      const mapped = renderSecretName(t.template, tenant, name);
      throw new SecretAccessError(
        'secret_missing',
        `secret '${name}' (backend name '${mapped}') not found in backend '${t.backend.kind}' for tenant '${tenant.tenantId}'`,
        { tenant: tenant.tenantId, name, backend: t.backend.kind },
      );
    }
    return v;
  }

  /**
   * Where `name` lives for `tenant`, for messages that must tell an operator what to set: the
   * backend, its own name for the secret, and for the env backend the environment variable.
   */
  locate(tenant: TenantCtx, name: string): { backend: string; name: string; where: string } {
    const t = this.forTenant(tenant.tenantId);
    const mapped = renderSecretName(t.template, tenant, name);
    const where =
      t.backend.kind === 'env'
        ? `environment variable ${envVarName(mapped)}`
        : `'${mapped}' in secrets backend '${t.backend.kind}'`;
    return { backend: t.backend.kind, name: mapped, where };
  }

  backendFor(tenant: TenantCtx): CachingSecretsBackend {
    return this.forTenant(tenant.tenantId).backend;
  }

  /** Per tenant: backend kind, mapping and cache counters. Never a name's value. */
  status(): TenantSecretsStatus[] {
    return this.registry.tenants().map((t) => {
      const s = this.forTenant(t.id);
      return { tenant: t.id, backend: s.backend.kind, nameTemplate: s.template, cache: s.backend.stats() };
    });
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.allSettled([...this.tenants.values()].map((t) => t.backend.close()));
    this.tenants.clear();
  }

  private forTenant(tenantId: string): TenantSecrets {
    const binding = this.registry.tenant(tenantId).secrets;
    const cur = this.tenants.get(tenantId);
    if (cur && cur.binding === binding) return cur;
    if (cur) void cur.backend.close();
    const built = this.build(tenantId, binding);
    this.tenants.set(tenantId, built);
    return built;
  }

  private build(tenantId: string, binding: SecretsBinding): TenantSecrets {
    const factory = this.factories.get(binding.backend);
    if (!factory) {
      throw new ConfigError(
        `tenant '${tenantId}': secrets backend '${binding.backend}' is not available (known: ${[...this.factories.keys()].join(', ')})`,
        { tenant: tenantId, backend: binding.backend },
      );
    }
    const ctx: TenantCtx = { tenantId, envId: '*' };
    const opts = new BackendOptions(binding.backend, ctx, binding.options, this.registry.bundle.dir);
    const template = opts.string('name_template') ?? factory.defaultNameTemplate ?? DEFAULT_NAME_TEMPLATE;
    checkNameTemplate(template, tenantId);
    const own = Object.fromEntries(Object.entries(binding.options).filter(([k]) => !COMMON_OPTIONS.has(k)));
    const inner = factory.create(ctx, own, this.registry.bundle.dir);
    const backend = new CachingSecretsBackend(inner, this.cacheOptions(opts.object('cache')), tenantId, (v) =>
      this.redactor.register(v),
    );
    this.logger.log(
      { tenant: tenantId, backend: inner.kind, nameTemplate: template },
      'secrets backend ready',
    );
    return { binding, template, backend };
  }

  private cacheOptions(o: BackendOptions): SecretsCacheOptions {
    const ttlS = o.number('ttl_seconds', DEFAULT_CACHE.ttlMs / 1000, 0);
    return {
      ttlMs: ttlS * 1000,
      refreshAfterMs: o.number('refresh_after_seconds', ttlS * 0.8, 0) * 1000,
      staleMs: o.number('stale_seconds', DEFAULT_CACHE.staleMs / 1000, 0) * 1000,
      missingTtlMs: o.number('missing_ttl_seconds', DEFAULT_CACHE.missingTtlMs / 1000, 0) * 1000,
      now: () => this.clock(),
    };
  }
}
