import { describe, expect, it } from 'vitest';
import { ConfigError } from '../common/errors.js';
import { parseBundle } from './bundle.loader.js';

const GOOD = `
tenants:
  demo:
    packs:
      - { id: demo, source: file:./packs/demo }
    envs:
      dev:
        teams:
          default:
            channels:
              web: { provider: webhook, pack: demo, flow: weather_bot }
`;

function err(text: string): string {
  try {
    parseBundle(text, '/b/bundle.yaml');
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected the bundle to be refused');
}

describe('bundle loader', () => {
  it('normalises a valid bundle with defaults', () => {
    const b = parseBundle(GOOD, '/b/bundle.yaml');
    const ch = b.tenants.get('demo')?.envs.get('dev')?.teams.get('default')?.channels.get('web');
    expect(ch).toMatchObject({
      provider: 'webhook',
      pack: 'demo',
      flow: 'weather_bot',
      sessionTtlSeconds: 3600,
    });
    expect(b.trust.policy).toBe('strict');
    expect(b.limits.maxBodyBytes).toBe(256 * 1024);
    expect(b.dir).toBe('/b');
  });

  it('reads the JSON body limits, with defaults, a bundle value and a tenant override', () => {
    expect(parseBundle(GOOD, '/b/bundle.yaml').limits).toMatchObject({
      maxJsonDepth: 64,
      maxJsonKeys: 10_000,
    });
    const b = parseBundle(
      `limits: { max_json_depth: 32, max_json_keys: 500 }\n` +
        GOOD.replace('  demo:\n    packs', '  demo:\n    limits: { max_json_depth: 16 }\n    packs'),
      '/b/bundle.yaml',
    );
    expect(b.limits).toMatchObject({ maxJsonDepth: 32, maxJsonKeys: 500 });
    expect(b.tenants.get('demo')!.limits).toMatchObject({ maxJsonDepth: 16, maxJsonKeys: 500 });
    expect(err(`limits: { max_json_depth: 5000 }\n` + GOOD)).toMatch(/key 'limits\.max_json_depth'/);
  });

  it("reads a channel's delivery mode, at_least_once by default, and refuses any other value", () => {
    const b = parseBundle(
      GOOD.replace('provider: webhook,', 'provider: webhook, delivery: at_most_once,'),
      '/b/bundle.yaml',
    );
    const ch = b.tenants.get('demo')?.envs.get('dev')?.teams.get('default')?.channels.get('web');
    expect(ch?.delivery).toBe('at_most_once');
    const d = parseBundle(GOOD, '/b/bundle.yaml').tenants.get('demo')?.envs.get('dev')?.teams.get('default');
    expect(d?.channels.get('web')?.delivery).toBe('at_least_once');
    const m = err(GOOD.replace('provider: webhook,', 'provider: webhook, delivery: exactly_once,'));
    expect(m).toContain('channels.web.delivery');
    expect(m).toContain('at_least_once');
    expect(m).toContain('at_most_once');
  });

  it('names file, line, key and expectation for a missing required key', () => {
    const msg = err(GOOD.replace('provider: webhook, ', ''));
    expect(msg).toContain(
      "/b/bundle.yaml:11:20: key 'tenants.demo.envs.dev.teams.default.channels.web.provider': expected a value (required)",
    );
  });

  it('refuses an unknown key', () => {
    const msg = err(GOOD.replace('flow: weather_bot', 'flow: weather_bot, colour: red'));
    expect(msg).toMatch(
      /key 'tenants\.demo\.envs\.dev\.teams\.default\.channels\.web\.colour': expected no such key/,
    );
  });

  it('refuses ids that cannot be subject tokens', () => {
    // One line per bad id, naming it (not a second line from the inner pattern).
    expect(err(GOOD.replace('  demo:\n    packs', '  "de.mo":\n    packs'))).toBe(
      "invalid bundle:\n  /b/bundle.yaml:3:3: key 'tenants': expected ids of letters, digits, _ and - only; found 'de.mo'",
    );
  });

  it('refuses \'-\' alone as a team id: tenant keys write it for "no team"', () => {
    expect(err(GOOD.replace('          default:\n', '          "-":\n'))).toBe(
      `invalid bundle:\n  /b/bundle.yaml:9:11: key 'tenants.demo.envs.dev.teams': expected ids of letters, digits, _ and - only, and not '-' alone (it stands for "no team"); found '-'`,
    );
    const timer = GOOD.replace(
      '        teams:\n',
      '        timers:\n          tick: { pack: demo, flow: weather_bot, interval: 1m, team: "-" }\n        teams:\n',
    );
    expect(err(timer)).toContain(
      `key 'tenants.demo.envs.dev.timers.tick.team': expected a team id of letters, digits, _ and - only, and not '-' alone`,
    );
    // Dashes inside a team id stay valid.
    const ok = parseBundle(GOOD.replace('          default:\n', '          team-a-:\n'), '/b/bundle.yaml');
    expect([...ok.tenants.get('demo')!.envs.get('dev')!.teams.keys()]).toEqual(['team-a-']);
  });

  it('takes reverse-DNS pack ids (upstream packs), with dots between non-empty segments only', () => {
    const dns = GOOD.replace('id: demo,', 'id: ai.greentic.demo,').replace(
      'pack: demo',
      'pack: ai.greentic.demo',
    );
    const b = parseBundle(dns, '/b/bundle.yaml');
    expect(b.tenants.get('demo')?.envs.get('dev')?.teams.get('default')?.channels.get('web')?.pack).toBe(
      'ai.greentic.demo',
    );
    for (const bad of ['ai..demo', '.demo', 'demo.', 'ai/demo']) {
      expect(err(GOOD.replace('id: demo,', `id: "${bad}",`))).toMatch(
        /key 'tenants\.demo\.packs\.0\.id': expected a string matching/,
      );
    }
  });

  it('refuses a wrong type with its line', () => {
    expect(err(GOOD.replace('flow: weather_bot', 'flow: weather_bot, session_ttl_seconds: soon'))).toMatch(
      /bundle\.yaml:11:\d+: key '.*session_ttl_seconds': expected integer/,
    );
  });

  it('refuses a channel bound to a pack the tenant does not list', () => {
    expect(err(GOOD.replace('pack: demo', 'pack: other'))).toContain(
      "expected one of the tenant's packs [\"demo\"], got 'other'",
    );
  });

  it('reports YAML syntax errors with a position', () => {
    expect(err('tenants:\n  demo: [unclosed\n')).toMatch(/\/b\/bundle\.yaml:\d+:\d+: /);
  });
});
