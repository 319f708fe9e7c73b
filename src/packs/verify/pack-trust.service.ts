import { Injectable, Logger } from '@nestjs/common';
import { PackError } from '../../common/errors.js';
import { RunnerConfig } from '../../config/runner-config.js';
import { BundleRegistry } from '../../tenancy/bundle-registry.service.js';
import type { TenantBinding } from '../../tenancy/bundle.types.js';
import { loadTrustedKeys, splitKeyList, trustPolicy, type TrustPolicy } from './trust.js';

export interface TrustSummary {
  policy: 'strict' | 'dev';
  keys: { fingerprint: string; source: string }[];
}

/**
 * The trust policy of the running bundle: mode from the bundle's `trust.policy` (strict by
 * default), keys from `GREENTIC_TRUSTED_KEYS` plus the bundle's `trust.keys` (files relative to
 * the bundle, or inline). Re-read on every explicit reload so a key rotation needs no restart.
 */
@Injectable()
export class PackTrustService {
  private readonly logger = new Logger(PackTrustService.name);
  private current?: TrustPolicy;

  constructor(
    private readonly config: RunnerConfig,
    private readonly bundles: BundleRegistry,
  ) {}

  policy(): TrustPolicy {
    return (this.current ??= this.read());
  }

  refresh(): TrustPolicy {
    this.current = this.read();
    return this.current;
  }

  private read(): TrustPolicy {
    const b = this.bundles.bundle;
    const keys = [
      ...loadTrustedKeys(
        splitKeyList(this.config.GREENTIC_TRUSTED_KEYS),
        process.cwd(),
        'GREENTIC_TRUSTED_KEYS',
      ),
      ...loadTrustedKeys(b.trust.keys, b.dir, `${b.file}: trust.keys`),
    ];
    const p = trustPolicy(b.trust.policy, keys);
    this.logger.log({ policy: p.mode, keys: [...p.keys.keys()] }, 'pack trust policy');
    return p;
  }

  /** `dev` lets unsigned packs run: never for a tenant that has a production environment. */
  assertAllowed(tenant: TenantBinding): void {
    if (this.policy().mode === 'dev' && tenant.envs.has('prod')) {
      throw new PackError(
        'pack_policy_forbidden',
        `${this.bundles.bundle.file}: trust.policy 'dev' is refused for tenant '${tenant.id}', which has a 'prod' environment; use 'strict' and trusted keys`,
        { tenant: tenant.id },
      );
    }
  }

  summary(): TrustSummary {
    const p = this.policy();
    return {
      policy: p.mode,
      keys: [...p.keys.values()].map((k) => ({ fingerprint: k.fingerprint, source: k.source })),
    };
  }
}
