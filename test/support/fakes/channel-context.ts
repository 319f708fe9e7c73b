import type { SecretsService } from '../../../src/secrets/secrets.service.js';
import type { ResolvedChannel } from '../../../src/tenancy/bundle-registry.service.js';
import { DEFAULT_LIMITS } from '../../../src/tenancy/bundle.types.js';
import type { ProviderRequest } from '../../../src/messaging/providers/messaging-provider.js';

/** A resolved channel for a provider's unit spec, without a bundle file. */
export function fakeChannel(
  provider: string,
  settings: Record<string, unknown> = {},
  tenantId = 'acme',
  channelId = 'main',
): ResolvedChannel {
  return {
    tenant: Object.freeze({ tenantId, envId: 'dev', teamId: 'default' }),
    tenantBinding: {
      id: tenantId,
      envs: new Map(),
      packs: [],
      secrets: { backend: 'env', options: {} },
      limits: DEFAULT_LIMITS,
    },
    channel: {
      id: channelId,
      provider,
      pack: 'p',
      flow: 'f',
      sessionTtlSeconds: 1800,
      settings,
      secrets: [],
      secretRefs: {},
    },
  };
}

/** SecretsService stand-in for unit specs: a map of names per tenant (e2e tests use the real one). */
export function fakeSecrets(values: Record<string, string>): SecretsService {
  return { get: async (_tenant: unknown, name: string) => values[name] } as unknown as SecretsService;
}

export function providerRequest(
  body: Buffer | string,
  headers: Record<string, string> = {},
  query: Record<string, unknown> = {},
  method = 'POST',
): ProviderRequest {
  const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    method,
    path: '/webhooks/x',
    headers: lower,
    query,
    rawBody: Buffer.isBuffer(body) ? body : Buffer.from(body),
  };
}
