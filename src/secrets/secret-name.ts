import { ConfigError } from '../common/errors.js';
import type { TenantCtx } from '../core/tenant-ctx.js';

export const DEFAULT_NAME_TEMPLATE = '{tenant}/{env}/{name}';
const PLACEHOLDER = /\{([a-z]+)\}/g;
const KNOWN = new Set(['tenant', 'env', 'team', 'name']);

/** Checks a `name_template` once, at start-up, so a typo stops the process instead of every read. */
export function checkNameTemplate(template: string, tenantId: string): void {
  const used = new Set<string>();
  for (const m of template.matchAll(PLACEHOLDER)) {
    if (!KNOWN.has(m[1]!)) {
      throw new ConfigError(
        `tenant '${tenantId}': secrets option 'name_template' uses unknown placeholder '{${m[1]}}' (known: {tenant}, {env}, {team}, {name})`,
      );
    }
    used.add(m[1]!);
  }
  if (!used.has('name'))
    throw new ConfigError(`tenant '${tenantId}': secrets option 'name_template' must contain '{name}'`);
}

/** Logical secret name → the backend's name, e.g. `api_key` → `acme/prod/api_key`. */
export function renderSecretName(template: string, tenant: TenantCtx, name: string): string {
  return template.replace(PLACEHOLDER, (_m, key: string) => {
    switch (key) {
      case 'tenant':
        return tenant.tenantId;
      case 'env':
        return tenant.envId;
      case 'team':
        return tenant.teamId ?? 'default';
      default:
        return name;
    }
  });
}
