/**
 * Mistakes that used to pass every check and fail on the first user (issue #17, item 4): each is
 * refused by the command or route an operator runs before production, with a message naming the
 * thing that is wrong. Commands run in-process from their entry functions; the runner is the real
 * app (in-process bus and session store: nothing here is about NATS or Redis).
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createApp, startApp, type RunnerApp } from '../src/bootstrap.js';
import { runFlowCli } from '../src/cli/greentic-flow/cli.js';
import { runCli as runPackCli } from '../src/cli/greentic-pack/cli.js';
import { runCli as runRunnerCli } from '../src/cli/greentic-runner/cli.js';
import { BUILTIN_PROVIDER_IDS } from '../src/messaging/providers/channel-providers.js';
import { ProviderRegistry } from '../src/messaging/providers/provider-registry.service.js';
import { WORLD_V06 } from '../src/core/component-runtime.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { writeTempBundle, type TempChannel } from './support/temp-bundle.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

function capture(): {
  io: { out: (t: string) => void; err: (t: string) => void };
  done: (code: number) => Run;
} {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (t) => out.push(t), err: (t) => err.push(t) },
    done: (code) => ({ code, out: out.join('\n'), err: err.join('\n') }),
  };
}

async function flowCli(args: string[]): Promise<Run> {
  const c = capture();
  return c.done(await runFlowCli(args, c.io, process.cwd()));
}

async function packCli(args: string[]): Promise<Run> {
  const c = capture();
  return c.done(await runPackCli(args, c.io));
}

async function runnerCli(args: string[]): Promise<Run> {
  const c = capture();
  return c.done(await runRunnerCli(args, { io: c.io, env: {} }));
}

/** A flow calling the 0.6 fixture `calc` (operations echo, sum, fail, crash, clock). */
function calcFlow(operation: string): string {
  return [
    'id: compute',
    'type: messaging',
    'nodes:',
    '  compute:',
    `    component.exec: { component: calc, operation: ${operation}, args: { values: [1, 2] } }`,
    '    routing:',
    '      - to: answer',
    '  answer:',
    '    reply: { text: "{{compute.payload.sum}}" }',
    '',
  ].join('\n');
}

/** A pack directory as an author has it: pack.yaml, the flow, the built component. */
function packDir(operation: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-mistakes-pack-'));
  mkdirSync(path.join(dir, 'flows'));
  mkdirSync(path.join(dir, 'components'));
  copyFileSync(fixturePath('js-v06'), path.join(dir, 'components', 'calc.wasm'));
  writeFileSync(path.join(dir, 'flows', 'compute.ygtc'), calcFlow(operation));
  writeFileSync(
    path.join(dir, 'pack.yaml'),
    'id: calc\nversion: 0.1.0\nflows: [flows/compute.ygtc]\ncomponents:\n  - { name: calc, path: components/calc.wasm }\n',
  );
  return dir;
}

const ECHO_FLOW = 'id: hello\ntype: messaging\nnodes:\n  greet:\n    reply: { text: "hi" }\n';

function bundleWith(channel: Partial<TempChannel>, tenant = 'mistakes', extra: object = {}): string {
  return writeTempBundle({
    packs: [{ id: 'hello', flows: { 'hello.ygtc': ECHO_FLOW } }],
    tenants: {
      [tenant]: {
        packs: ['hello'],
        channels: { web: { pack: 'hello', flow: 'hello', ...channel } },
        ...extra,
      },
    },
  });
}

describe('a flow calling an operation its component does not declare', () => {
  it('is refused by greentic-flow validate <pack dir>, naming node, operation and what is declared', async () => {
    const r = await flowCli(['validate', packDir('computee')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /flows\/compute\.ygtc:5:\d+: error: node 'compute': component 'calc' has no operation 'computee' \(it declares: [a-z, ]*sum[a-z, ]*\) \[unknown_operation\]/,
    );
  });

  it('is refused by greentic-pack build, and nothing is written', async () => {
    const dir = packDir('computee');
    const out = path.join(dir, 'calc.gtpack');
    const r = await packCli(['build', dir, '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("component 'calc' has no operation 'computee'");
    expect(() => readFileSync(out)).toThrow();
  });

  it('builds when the operation is declared, and the manifest records world and operations', async () => {
    const dir = packDir('sum');
    expect((await flowCli(['validate', dir])).code).toBe(0);
    const out = path.join(dir, 'calc.gtpack');
    const built = await packCli(['build', dir, '-o', out]);
    expect(built.err).not.toContain('error');
    expect(built.code).toBe(0);
    const inspected = await packCli(['inspect', out, '--json']);
    const m = JSON.parse(inspected.out) as {
      manifest: { components: { name: string; world: string; operations: string[] }[] };
    };
    expect(m.manifest.components).toEqual([
      expect.objectContaining({
        name: 'calc',
        world: WORLD_V06,
        operations: ['echo', 'sum', 'fail', 'crash', 'clock'],
      }),
    ]);
  });

  it('in a loose file is reported as unchecked: components are checked only inside a pack', async () => {
    const dir = packDir('computee');
    const r = await flowCli(['validate', path.join(dir, 'flows', 'compute.ygtc')]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      "warning: component node 'compute' (calc) not checked: components and their operations are checked only inside a pack",
    );
    expect(r.out).toContain('[components_unchecked]');
  });
});

describe('a channel bound to a provider nobody registered (provider: webhok)', () => {
  it('is refused by greentic-runner validate, naming the key, the provider and the registered ones', async () => {
    const r = await runnerCli(['validate', bundleWith({ provider: 'webhok' })]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('INVALID');
    expect(r.err).toContain(
      "key 'tenants.mistakes.envs.dev.teams.default.channels.web.provider': unknown provider 'webhok' (did you mean 'webhook'?); registered providers: slack, teams, telegram, timer, webchat, webhook, whatsapp",
    );
  });

  it('is refused at start-up, after every provider module was discovered', async () => {
    const app = await createApp({
      config: { PORT: 0, LOG_LEVEL: 'silent', GREENTIC_BUNDLE: bundleWith({ provider: 'webhok' }) },
    });
    try {
      await expect(app.init()).rejects.toThrow(
        /channels\.web\.provider': unknown provider 'webhok' \(did you mean 'webhook'\?\); registered providers: .*webhook/,
      );
    } finally {
      await app.close().catch(() => undefined);
    }
  });

  it('validates a custom provider once greentic-runner validate is told about its module', async () => {
    const bundle = bundleWith({
      provider: 'signed-webhook',
      settings: { callback_url: 'http://127.0.0.1:9/inbox' },
    });
    const without = await runnerCli(['validate', bundle]);
    expect(without.code).toBe(1);
    expect(without.err).toContain("unknown provider 'signed-webhook'");
    const withModule = await runnerCli([
      'validate',
      bundle,
      '--provider-module',
      './examples/custom-provider/src/index.ts#SignedWebhookModule',
    ]);
    expect(withModule.err).toBe('');
    expect(withModule.out).toContain('providers: signed-webhook, slack');
    expect(withModule.code).toBe(0);
  });
});

describe('a channel whose secret_refs do not resolve', () => {
  const VAR = 'GREENTIC_SECRET_MISTAKES_SECRETS_DEV_HOOKS_SIGNING';
  const channel = { secret_refs: { signing_secret: 'hooks_signing' } };
  // Missing answers are not cached, so readiness sees the variable as soon as it is set.
  const secrets = { secrets: { backend: 'env', options: { cache: { missing_ttl_seconds: 0 } } } };
  afterEach(() => {
    delete process.env[VAR];
  });

  it('is refused by greentic-runner validate, naming the secret and its environment variable', async () => {
    const r = await runnerCli(['validate', bundleWith(channel, 'mistakes_secrets', secrets)]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `tenant 'mistakes_secrets' channel 'dev/default/web' (webhook): secret_refs.signing_secret → secret 'hooks_signing' is not set (set environment variable ${VAR})`,
    );
    process.env[VAR] = 'set-now';
    expect((await runnerCli(['validate', bundleWith(channel, 'mistakes_secrets', secrets)])).code).toBe(0);
  });

  describe('/health/ready', () => {
    let app: RunnerApp;
    let url: string;
    beforeAll(async () => {
      ({ app, url } = await startApp({
        config: {
          PORT: 0,
          LOG_LEVEL: 'silent',
          GREENTIC_BUNDLE: bundleWith(channel, 'mistakes_secrets', secrets),
        },
      }));
    }, 120_000);
    afterAll(async () => {
      await app?.close();
    });

    it('is 503 naming the secret and its variable until it is set, then 200', async () => {
      const res = await fetch(`${url}/health/ready`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as {
        checks: { secrets: { up: boolean; details: { unresolved: unknown[]; messages: string[] } } };
      };
      expect(body.checks.secrets.up).toBe(false);
      expect(body.checks.secrets.details.unresolved).toEqual([
        {
          tenant: 'mistakes_secrets',
          env: 'dev',
          team: 'default',
          channel: 'web',
          ref: 'signing_secret',
          secret: 'hooks_signing',
          backend: 'env',
          where: `environment variable ${VAR}`,
          reason: 'missing',
        },
      ]);
      expect(body.checks.secrets.details.messages[0]).toContain(`set environment variable ${VAR}`);
      process.env[VAR] = 'a-value-never-shown';
      const ready = await fetch(`${url}/health/ready`);
      const text = await ready.text();
      expect(ready.status).toBe(200);
      expect(text).not.toContain('a-value-never-shown');
    });

    it('registers exactly the built-in providers greentic-runner validate knows', () => {
      expect(app.get(ProviderRegistry).ids().sort()).toEqual([...BUILTIN_PROVIDER_IDS]);
    });
  });
});

describe('POST /admin/packs/reload naming a tenant or pack that does not exist', () => {
  let app: RunnerApp;
  let url: string;
  beforeAll(async () => {
    ({ app, url } = await startApp({
      config: { PORT: 0, LOG_LEVEL: 'silent', GREENTIC_BUNDLE: bundleWith({}, 'mistakes_admin') },
    }));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
  });

  const reload = async (body: object): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(`${url}/admin/packs/reload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  it('answers 404 unknown_tenant for a tenant the bundle does not have', async () => {
    const r = await reload({ tenant: 'nope' });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({ error: { code: 'unknown_tenant', message: "unknown tenant 'nope'" } });
  });

  it('answers 404 unknown_pack for a pack the tenant does not have, naming its packs', async () => {
    const r = await reload({ tenant: 'mistakes_admin', pack: 'nope' });
    expect(r.status).toBe(404);
    expect(r.body).toMatchObject({
      error: {
        code: 'unknown_pack',
        message: "unknown pack 'nope' for tenant 'mistakes_admin' (packs: hello)",
      },
    });
    expect((await reload({ pack: 'nope' })).status).toBe(404);
  });

  it('still reloads what exists', async () => {
    const r = await reload({ tenant: 'mistakes_admin', pack: 'hello' });
    expect(r.status).toBe(200);
    expect(r.body['ok']).toBe(true);
  });
});
