import { afterAll, describe, expect, it } from 'vitest';
import { SecretAccessError } from '../common/errors.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { parseBundle } from '../tenancy/bundle.loader.js';
import { envSecretsFactory } from './backends/env-secrets.backend.js';
import { SecretsService } from './secrets.service.js';
import { TenantSecrets } from './tenant-secrets.service.js';

const registry = new BundleRegistry(
  parseBundle(
    `
tenants:
  a:
    packs: [{ id: p, source: file:./p }]
    secrets: { backend: env }
    envs: { dev: { teams: { default: { channels: {} } } } }
  b:
    packs: [{ id: p, source: file:./p }]
    secrets: { backend: env }
    envs: { dev: { teams: { default: { channels: {} } } } }
`,
    '/x/bundle.yaml',
  ),
);
const A: TenantCtx = registry.resolveTenant({ tenant: 'a', env: 'dev' }).ctx;
const B: TenantCtx = registry.resolveTenant({ tenant: 'b', env: 'dev' }).ctx;

// The env backend under the default `{tenant}/{env}/{name}` mapping.
process.env['GREENTIC_SECRET_A_DEV_API_KEY'] = 'key-of-a';
process.env['GREENTIC_SECRET_B_DEV_API_KEY'] = 'key-of-b';
process.env['GREENTIC_SECRET_B_DEV_ONLY_B'] = 'b-only';

describe('TenantSecrets', () => {
  const service = new SecretsService(registry, [envSecretsFactory]);
  service.onModuleInit();
  afterAll(() => service.onApplicationShutdown());

  it("reads its own tenant's secret for a name both tenants use", async () => {
    expect(await new TenantSecrets(A, service).get('API_KEY')).toBe('key-of-a');
    expect(await new TenantSecrets(B, service).get('API_KEY')).toBe('key-of-b');
  });

  it("cannot reach a name only another tenant has: it is missing, with the tenant's own mapping", async () => {
    const a = new TenantSecrets(A, service);
    expect(await a.get('ONLY_B')).toBeUndefined();
    await expect(a.require('ONLY_B')).rejects.toThrow(/'a\/dev\/ONLY_B'.*tenant 'a'/);
    expect(a.locate('ONLY_B').where).toBe('environment variable GREENTIC_SECRET_A_DEV_ONLY_B');
  });

  it('still applies the allow-list per call', async () => {
    await expect(new TenantSecrets(A, service).get('API_KEY', ['OTHER'])).rejects.toBeInstanceOf(
      SecretAccessError,
    );
  });
});
