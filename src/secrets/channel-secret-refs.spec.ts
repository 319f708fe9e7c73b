import { describe, expect, it } from 'vitest';
import { SecretBackendError } from './secrets.errors.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { parseBundle } from '../tenancy/bundle.loader.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import { unresolvedSecretRefs } from './channel-secret-refs.js';
import type { SecretsService } from './secrets.service.js';

const registry = new BundleRegistry(
  parseBundle(
    `tenants:
  acme:
    packs: [{ id: p, source: 'file:./p' }]
    envs:
      prod:
        teams:
          support:
            channels:
              hooks: { provider: slack, pack: p, flow: f, secret_refs: { signing_secret: slack_signing, bot_token: slack_bot } }
              plain: { provider: webhook, pack: p, flow: f }
`,
    '/srv/bundle.yaml',
  ),
);

/** A vault-like store: one value present, one absent, one that the store cannot answer for. */
function secrets(values: Record<string, string | Error>): SecretsService {
  return {
    locate: (t: TenantCtx, name: string) => {
      return {
        backend: 'vault',
        name: `${t.tenantId}/${t.envId}/${name}`,
        where: `'${t.tenantId}/${t.envId}/${name}' in secrets backend 'vault'`,
      };
    },
    get: async (_t: TenantCtx, name: string) => {
      const v = values[name];
      if (v instanceof Error) throw v;
      return v;
    },
  } as unknown as SecretsService;
}

describe('unresolvedSecretRefs', () => {
  it('is empty when every ref resolves', async () => {
    expect(await unresolvedSecretRefs(registry, secrets({ slack_signing: 's', slack_bot: 'b' }))).toEqual([]);
  });

  it('names the channel, the ref, the secret and where to set it; an unanswering store is told apart', async () => {
    const out = await unresolvedSecretRefs(
      registry,
      secrets({
        slack_signing: '',
        slack_bot: new SecretBackendError('vault', 'acme/prod/slack_bot', 'connection refused'),
      }),
    );
    expect(out.map((u) => [u.ref, u.secret, u.reason])).toEqual([
      ['signing_secret', 'slack_signing', 'missing'],
      ['bot_token', 'slack_bot', 'unreadable'],
    ]);
    expect(out[0]!.message).toBe(
      "tenant 'acme' channel 'prod/support/hooks' (slack): secret_refs.signing_secret → secret 'slack_signing' is not set (set 'acme/prod/slack_signing' in secrets backend 'vault')",
    );
    expect(out[1]!.message).toContain(
      "could not be read: secrets backend 'vault' could not read secret 'acme/prod/slack_bot': connection refused",
    );
  });
});
