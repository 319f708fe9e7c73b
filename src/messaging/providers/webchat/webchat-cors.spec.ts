import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UnknownTenancyError } from '../../../common/errors.js';
import type { ResolvedChannel } from '../../../tenancy/bundle-registry.service.js';
import { parseBundle } from '../../../tenancy/bundle.loader.js';
import { DEFAULT_LIMITS, type ChannelBinding } from '../../../tenancy/bundle.types.js';
import { corsTarget, webChatCorsHook, type CorsTarget } from './webchat-cors.hook.js';
import { allowedOrigins, allowOriginFor, normaliseOrigin } from './webchat-origins.js';

function channel(id: string, settings: Record<string, unknown>): ResolvedChannel {
  const binding: ChannelBinding = {
    id,
    provider: 'webchat',
    pack: 'demo',
    flow: 'weather_bot',
    sessionTtlSeconds: 3600,
    settings,
    secrets: [],
    secretRefs: {},
  };
  return {
    tenant: { tenantId: 'acme', envId: 'prod', teamId: 'default' },
    tenantBinding: {
      id: 'acme',
      envs: new Map(),
      packs: [],
      secrets: { backend: 'env', options: {} },
      limits: DEFAULT_LIMITS,
    },
    channel: binding,
  };
}

describe('WebChat origin policy', () => {
  const listed = allowedOrigins(
    channel('web', { allowed_origins: ['https://www.Example.com:443', 'http://localhost:8080'] }).channel,
  );

  it('allows the listed origins, compared as browsers send them', () => {
    expect(allowOriginFor('https://www.example.com', listed, 'chat.acme.io')).toBe('https://www.example.com');
    expect(allowOriginFor('http://localhost:8080', listed, 'chat.acme.io')).toBe('http://localhost:8080');
  });

  it('refuses any other origin, another scheme or port of a listed one, and opaque origins', () => {
    expect(allowOriginFor('https://evil.example', listed, 'chat.acme.io')).toBeUndefined();
    expect(allowOriginFor('http://www.example.com', listed, 'chat.acme.io')).toBeUndefined();
    expect(allowOriginFor('http://localhost:8081', listed, 'chat.acme.io')).toBeUndefined();
    expect(allowOriginFor('null', listed, 'chat.acme.io')).toBeUndefined();
  });

  it("always allows the runner's own page, and by default nothing else", () => {
    const none = allowedOrigins(channel('plain', {}).channel);
    expect(allowOriginFor('http://127.0.0.1:3000', none, '127.0.0.1:3000')).toBe('http://127.0.0.1:3000');
    expect(allowOriginFor('https://chat.acme.io', none, 'chat.acme.io:443')).toBe('https://chat.acme.io');
    expect(allowOriginFor('http://127.0.0.1:3001', none, '127.0.0.1:3000')).toBeUndefined();
    expect(allowOriginFor('https://www.example.com', none, undefined)).toBeUndefined();
  });

  it('answers `*` for any origin when the channel allows any', () => {
    const any = allowedOrigins(channel('any', { allowed_origins: ['*'] }).channel);
    expect(any).toBe('*');
    expect(allowOriginFor('https://anything.example', any, 'chat.acme.io')).toBe('*');
    expect(allowOriginFor('null', any, 'chat.acme.io')).toBe('*');
  });

  it('normalises origins and rejects what is not a web origin', () => {
    expect(normaliseOrigin('HTTPS://WWW.EXAMPLE.COM:443')).toBe('https://www.example.com');
    expect(normaliseOrigin('http://[::1]:8080')).toBe('http://[::1]:8080');
    expect(normaliseOrigin('file:///tmp/x.html')).toBeUndefined();
    expect(normaliseOrigin('not an origin')).toBeUndefined();
  });
});

describe('WebChat CORS routes', () => {
  it('covers the Direct Line REST routes and the page token endpoint, not the stream or the page', () => {
    const c = { tenant: 'acme', env: 'prod', team: 'default', channel: 'web' };
    const base = '/webchat/acme/prod/default/web';
    for (const p of [
      `${base}/token`,
      `${base}/v3/directline/tokens/generate`,
      `${base}/v3/directline/tokens/refresh`,
      `${base}/v3/directline/conversations`,
      `${base}/v3/directline/conversations/abc`,
      `${base}/v3/directline/conversations/abc/activities`,
      `${base}/v3/directline/conversations/abc/activities/`,
    ])
      expect(corsTarget(p), p).toEqual(c);
    expect(corsTarget('/v3/directline/conversations/abc/activities')).toBe('default');
    expect(corsTarget('/v3/directline/tokens/generate')).toBe('default');
    for (const p of [
      `${base}/v3/directline/conversations/abc/stream`,
      '/v3/directline/conversations/abc/stream',
      base,
      '/webchat/assets/webchat.js',
      '/webhooks/webhook/acme/prod/default/web',
      `${base}/v3/directline/other`,
    ])
      expect(corsTarget(p), p).toBeUndefined();
  });
});

describe('WebChat CORS hook', () => {
  let app: FastifyInstance;
  const warnings: { obj: Record<string, unknown>; msg: string }[] = [];
  const web = channel('web', { allowed_origins: ['https://shop.example'] });
  const base = '/webchat/acme/prod/default/web';

  beforeEach(async () => {
    warnings.length = 0;
    app = Fastify();
    const lookup = (t: CorsTarget): ResolvedChannel => {
      if (t === 'default' || t.channel === 'web') return web;
      throw new UnknownTenancyError('channel', t.channel);
    };
    app.addHook(
      'onRequest',
      webChatCorsHook(lookup, {
        warn: (obj: Record<string, unknown>, msg: string) => void warnings.push({ obj, msg }),
      }),
    );
    app.post(`${base}/v3/directline/conversations`, async () => ({ conversationId: 'c1' }));
    app.post(`${base}/token`, async () => ({ token: 't' }));
    app.post('/webhooks/x', async () => ({ ok: true }));
    await app.ready();
  });

  afterEach(() => app.close());

  const preflight = (url: string, origin: string) =>
    app.inject({
      method: 'OPTIONS',
      url,
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-ms-bot-agent,x-requested-with',
      },
    });

  it("answers an allowed origin's preflight with the methods and headers Web Chat sends", async () => {
    const res = await preflight(`${base}/v3/directline/conversations`, 'https://shop.example');
    expect(res.statusCode).toBe(204);
    expect(res.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(res.headers['access-control-allow-methods']).toContain('POST');
    expect(String(res.headers['access-control-allow-headers']).toLowerCase()).toBe(
      'authorization, content-type, x-ms-bot-agent, x-requested-with',
    );
    expect(res.headers['vary']).toBe('Origin');
    expect(warnings).toEqual([]);
  });

  it('refuses the preflight of an origin not allowed: 403, no CORS headers, logged with its tenant', async () => {
    const res = await preflight(`${base}/v3/directline/conversations`, 'https://evil.example');
    expect(res.statusCode).toBe(403);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.json()).toEqual({
      error: {
        code: 'origin_not_allowed',
        message: "origin https://evil.example may not call WebChat channel 'web' (settings.allowed_origins)",
      },
    });
    expect(warnings).toEqual([
      {
        msg: 'webchat CORS preflight refused',
        obj: expect.objectContaining({ tenant: 'acme', channel: 'web', origin: 'https://evil.example' }),
      },
    ]);
  });

  it("adds the CORS headers to an allowed origin's requests and none to another's", async () => {
    const ok = await app.inject({
      method: 'POST',
      url: `${base}/token`,
      headers: { origin: 'https://shop.example' },
    });
    expect(ok.statusCode).toBe(200);
    expect(ok.headers['access-control-allow-origin']).toBe('https://shop.example');
    expect(ok.headers['access-control-expose-headers']).toBe('Retry-After');

    const other = await app.inject({
      method: 'POST',
      url: `${base}/token`,
      headers: { origin: 'https://evil.example' },
    });
    expect(other.statusCode).toBe(200);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    expect(other.headers['vary']).toBe('Origin');
    expect(warnings.map((w) => w.msg)).toEqual(['webchat request from an origin not allowed']);
  });

  it('answers an unknown channel’s preflight with its 404 and leaves requests without Origin alone', async () => {
    const res = await preflight(
      '/webchat/acme/prod/default/nope/v3/directline/conversations',
      'https://x.example',
    );
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ error: { code: 'unknown_channel' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();

    const plain = await app.inject({ method: 'POST', url: `${base}/token` });
    expect(plain.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('leaves the other routes of the runner alone', async () => {
    expect((await preflight('/webhooks/x', 'https://shop.example')).statusCode).toBe(404);
    const res = await app.inject({
      method: 'POST',
      url: '/webhooks/x',
      headers: { origin: 'https://shop.example' },
    });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['vary']).toBeUndefined();
  });
});

describe('bundle validation of settings.allowed_origins', () => {
  const bundle = (env: string, provider: string, origins: string) => `
tenants:
  acme:
    packs: [{ id: demo, source: "file:packs/demo" }]
    envs:
      ${env}:
        teams:
          default:
            channels:
              web:
                provider: ${provider}
                pack: demo
                flow: weather_bot
                settings: { allowed_origins: ${origins} }
`;

  it('accepts `*` in a dev env and refuses it elsewhere, naming the key', () => {
    expect(() => parseBundle(bundle('dev', 'webchat', '["*"]'), '/b.yaml')).not.toThrow();
    expect(() => parseBundle(bundle('prod', 'webchat', '["*"]'), '/b.yaml')).toThrow(
      "/b.yaml: key 'tenants.acme.envs.prod.teams.default.channels.web.settings.allowed_origins': '*' (any origin) is allowed only in a dev env (dev, development, local), not in env 'prod'",
    );
    expect(() =>
      parseBundle(bundle('prod', 'webchat', '["https://www.example.com"]'), '/b.yaml'),
    ).not.toThrow();
  });

  it('refuses an entry that is not an origin, with one line naming the key', () => {
    let message = '';
    try {
      parseBundle(bundle('prod', 'webchat', '["https://www.example.com/chat"]'), '/b.yaml');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message.split('\n').slice(1)).toEqual([
      expect.stringContaining(
        "key 'tenants.acme.envs.prod.teams.default.channels.web.settings.allowed_origins.0': expected a string matching ^(\\*|https?://",
      ),
    ]);
  });

  it('leaves the setting of other providers alone', () => {
    expect(() => parseBundle(bundle('prod', 'webhook', '["*"]'), '/b.yaml')).not.toThrow();
  });
});
