import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturePath } from '../../../test/fixtures/fixture-paths.js';
import { writeTempBundle } from '../../../test/support/temp-bundle.js';
import { runCli } from './cli.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
}

const WEATHER_FLOW = readFileSync(path.resolve('examples/demo/packs/demo/flows/weather_bot.ygtc'), 'utf8');

function bundle(flow = WEATHER_FLOW): string {
  return writeTempBundle({
    packs: [
      {
        id: 'demo',
        flows: { 'weather_bot.ygtc': flow },
        components: { weather_api: fixturePath('weather_api') },
      },
    ],
    tenants: {
      demo: {
        packs: ['demo'],
        channels: {
          web: { pack: 'demo', flow: 'weather_bot' },
          alerts: { pack: 'demo', flow: 'weather_bot', delivery: 'at_most_once' },
        },
        secrets: {
          backend: 'vault',
          options: {
            address: 'https://ops:hunter2@vault.internal:8200',
            auth: { token_env: 'VAULT_TOKEN' },
            client_secret: 'inline-oops',
          },
        },
      },
    },
  });
}

describe('greentic-runner --config-explain', () => {
  it('prints each value with its source and masks credentials', async () => {
    const t = io();
    const env = {
      LOG_LEVEL: 'debug',
      GREENTIC_ADMIN_TOKEN: 'admin-token-value-123',
      REDIS_URL: 'redis://:redis-pass-456@cache:6379',
      GREENTIC_BUNDLE: bundle(),
    };
    const code = await runCli(['--config-explain', '--port', '9090', '--json'], { io: t.io, env });
    expect(code).toBe(0);
    const x = JSON.parse(t.out.join('\n')) as {
      values: { key: string; value: string; source: string }[];
      bundle: { tenants: { secretsOptions: unknown }[] };
    };
    const v = (k: string) => x.values.find((e) => e.key === k);
    expect(v('PORT')).toMatchObject({ value: '9090', source: 'flag' });
    expect(v('LOG_LEVEL')).toMatchObject({ value: 'debug', source: 'env' });
    expect(v('GREENTIC_BUS')).toMatchObject({ value: 'memory', source: 'default' });
    expect(v('GREENTIC_ADMIN_TOKEN')).toMatchObject({ value: '[redacted]', source: 'env' });
    expect(v('REDIS_URL')).toMatchObject({ value: 'redis://:[redacted]@cache:6379', source: 'env' });
    expect(v('OTEL_TRACES_SAMPLER')).toMatchObject({ value: 'parentbased_always_on', source: 'default' });
    const text = t.out.join('\n');
    for (const secret of ['admin-token-value-123', 'redis-pass-456', 'hunter2', 'inline-oops'])
      expect(text).not.toContain(secret);
    expect(x.bundle.tenants[0]!.secretsOptions).toMatchObject({
      address: 'https://ops:[redacted]@vault.internal:8200',
      client_secret: '[redacted]',
    });
  });

  it('prints a table, also under `start`, and names a bad value', async () => {
    const t = io();
    expect(
      await runCli(['start', '--config-explain', '--bus', 'nats'], {
        io: t.io,
        env: { GREENTIC_BUNDLE: bundle() },
      }),
    ).toBe(0);
    expect(t.out.join('\n')).toMatch(/GREENTIC_BUS\s+flag\s+nats/);
    const bad = io();
    expect(await runCli(['--config-explain'], { io: bad.io, env: { GREENTIC_METRICS: 'maybe' } })).toBe(1);
    expect(bad.err.join('\n')).toContain('GREENTIC_METRICS="maybe"');
  });
});

describe('greentic-runner validate', () => {
  it('accepts a valid bundle and lists its packs', async () => {
    const t = io();
    const code = await runCli(['validate', bundle()], { io: t.io, env: {} });
    expect(t.err).toEqual([]);
    expect(code).toBe(0);
    expect(t.out[0]).toMatch(/: valid$/);
    expect(t.out.join('\n')).toMatch(/pack demo\/demo: 0\.1\.0/);
    expect(t.out.join('\n')).toContain('channel dev/default/web → demo:weather_bot');
    // A channel's delivery mode is shown when it is not the default.
    expect(t.out.join('\n')).toContain(
      'channel dev/default/alerts → demo:weather_bot (delivery: at_most_once)',
    );
  });

  it('refuses a bundle whose flow routes to a missing node, naming file and line', async () => {
    const t = io();
    const broken = WEATHER_FLOW.replace('- to: weather_text', '- to: nowhere');
    const code = await runCli(['validate', bundle(broken), '--json'], { io: t.io, env: {} });
    expect(code).toBe(1);
    const r = JSON.parse(t.out.join('\n')) as { ok: boolean; error: string };
    expect(r.ok).toBe(false);
    expect(r.error).toMatch(/weather_bot\.ygtc:\d+:\d+/);
    expect(r.error).toContain('nowhere');
  });

  it('refuses a bad secrets binding without reading any secret', async () => {
    const file = writeTempBundle({
      packs: [
        {
          id: 'demo',
          flows: { 'weather_bot.ygtc': WEATHER_FLOW },
          components: { weather_api: fixturePath('weather_api') },
        },
      ],
      tenants: {
        demo: {
          packs: ['demo'],
          channels: { web: { pack: 'demo', flow: 'weather_bot' } },
          secrets: { backend: 'aws', options: {} },
        },
      },
    });
    const t = io();
    expect(await runCli(['validate', file], { io: t.io, env: {} })).toBe(1);
    expect(t.err.join('\n')).toContain("secrets backend 'aws': option 'region' is required");
  });
});

describe('greentic-runner start', () => {
  it('hands the flags to the runner as config overrides', async () => {
    let got: Record<string, string | undefined> | undefined;
    const code = await runCli(['start', '--port', '0', '--bundle', 'x.yaml', '--sessions', 'redis'], {
      io: io().io,
      start: async (c) => {
        got = c;
      },
    });
    expect(code).toBe(0);
    expect(got).toMatchObject({ PORT: '0', GREENTIC_BUNDLE: 'x.yaml', GREENTIC_SESSIONS: 'redis' });
  });

  it('--pack and --bundle exclude each other', async () => {
    const o = io();
    let started = false;
    const code = await runCli(['start', '--pack', 'a.gtpack', '--bundle', 'x.yaml'], {
      io: o.io,
      start: async () => {
        started = true;
      },
    });
    expect(code).toBe(2);
    expect(started).toBe(false);
    expect(o.err.join('\n')).toMatch(
      /option '--bundle <file>' cannot be used with option '--pack <file>'|option '--pack <file>' cannot be used with option '--bundle <file>'/,
    );
  });
});

describe('docs/operations.md', () => {
  it('documents every configuration variable', async () => {
    const { RunnerConfig } = await import('../../config/runner-config.js');
    const doc = readFileSync(path.resolve('docs/operations.md'), 'utf8');
    const keys = [...Object.keys(new RunnerConfig()), 'GREENTIC_ADMIN_TOKEN'];
    const missing = keys.filter((k) => !new RegExp(`\\|\\s*\`${k}\`\\s*\\|`).test(doc));
    expect(missing, 'add these to the environment table of docs/operations.md').toEqual([]);
  });
});
