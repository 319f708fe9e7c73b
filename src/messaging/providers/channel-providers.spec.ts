import { describe, expect, it } from 'vitest';
import { parseBundle } from '../../tenancy/bundle.loader.js';
import { BUILTIN_PROVIDER_IDS, unknownChannelProviders } from './channel-providers.js';

function bundle(providers: Record<string, string>): ReturnType<typeof parseBundle> {
  const channels = Object.entries(providers)
    .map(([id, p]) => `              ${id}: { provider: ${p}, pack: p, flow: f }`)
    .join('\n');
  return parseBundle(
    `tenants:\n  acme:\n    packs: [{ id: p, source: 'file:./p' }]\n    envs:\n      dev:\n        teams:\n          default:\n            channels:\n${channels}\n`,
    '/srv/bundle.yaml',
  );
}

describe('unknownChannelProviders', () => {
  it('accepts channels of registered providers', () => {
    expect(unknownChannelProviders(bundle({ a: 'webhook', b: 'slack' }), BUILTIN_PROVIDER_IDS)).toEqual([]);
  });

  it('names the key, the provider, a near registered id and all registered ones', () => {
    const [u, ...rest] = unknownChannelProviders(bundle({ web: 'webhok', ok: 'teams' }), [
      'webhook',
      'teams',
    ]);
    expect(rest).toEqual([]);
    expect(u).toMatchObject({
      tenant: 'acme',
      env: 'dev',
      team: 'default',
      channel: 'web',
      provider: 'webhok',
    });
    expect(u!.message).toBe(
      "/srv/bundle.yaml: key 'tenants.acme.envs.dev.teams.default.channels.web.provider': unknown provider 'webhok' (did you mean 'webhook'?); registered providers: teams, webhook",
    );
  });

  it('suggests nothing when no registered id is close', () => {
    const [u] = unknownChannelProviders(bundle({ web: 'carrier-pigeon' }), ['webhook']);
    expect(u!.message).toContain("unknown provider 'carrier-pigeon'; registered providers: webhook");
  });
});
