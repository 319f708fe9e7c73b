import { validateBundle } from '../src/cli/greentic-runner/validate.js';
import { spawnSync } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign } from '../examples/custom-provider/src/index.js';
import { FakeServer } from './support/fakes/fake-server.js';
import { RunnerProcess } from './support/runner-process.js';
import { writeTempBundle, type TempChannel } from './support/temp-bundle.js';

/**
 * A custom provider added by the bundle alone (issue #22 item 4): `provider_modules` names the
 * example's module (examples/custom-provider), and the stock entry point (`src/main.ts`, as
 * `greentic-runner start` runs it, in its own process) loads it. No main.ts of one's own.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
const EXAMPLE = path.join(ROOT, 'examples/custom-provider/src/index.ts');
const SECRET = 'module-key-secret';
const HELLO =
  'id: hello\ntype: messaging\nnodes:\n  greet:\n    reply: { text: "Hello {{message.text}}!" }\n';

function bundleWith(modules: string[]): string {
  const hooks = {
    provider: 'signed-webhook',
    pack: 'hello',
    flow: 'hello',
    settings: { callback_url: `http://127.0.0.1:${callback.port}/inbox` },
    secret_refs: { signing_secret: 'hooks_signing_secret' },
  } as TempChannel;
  const file = writeTempBundle({
    packs: [{ id: 'hello', flows: { 'hello.ygtc': HELLO } }],
    tenants: {
      acme: {
        packs: ['hello'],
        channels: { hooks },
        secrets: { backend: 'file', options: { path: 'secrets.yaml' } },
      },
    },
  });
  writeFileSync(
    path.join(path.dirname(file), 'secrets.yaml'),
    stringify({ 'acme/dev/hooks_signing_secret': SECRET }),
  );
  appendFileSync(file, stringify({ provider_modules: modules }));
  return file;
}

let callback: FakeServer;
let runner: RunnerProcess | undefined;

beforeAll(async () => {
  callback = await new FakeServer(() => ({ status: 204 })).listen();
});

afterAll(async () => {
  await runner?.kill('SIGTERM');
  await callback?.close();
});

describe('provider_modules in the bundle', () => {
  it('greentic-runner validate loads them too: the channel on the custom provider is valid', async () => {
    const report = await validateBundle(bundleWith([EXAMPLE]));
    expect(report.providers).toContain('signed-webhook');
    expect(report.problems).toEqual([]);
  });

  it('loads the example provider into the stock runner: signed message in, signed reply out', async () => {
    runner = await RunnerProcess.start('custom-module', {
      GREENTIC_BUNDLE: bundleWith([EXAMPLE]),
      GREENTIC_COMPONENT_POOL_MIN: 0,
    });
    const health = (await (await fetch(`${runner.url}/health`)).json()) as {
      details: { packs: { providers: string[] } };
    };
    expect(health.details.packs.providers).toContain('signed-webhook');

    const body = JSON.stringify({ id: 'mod-1', user: 'ada', text: 'module' });
    const ts = String(Math.floor(Date.now() / 1000));
    const res = await fetch(`${runner.url}/webhooks/signed-webhook/acme/dev/default/hooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-signature-timestamp': ts,
        'x-signature': sign(SECRET, ts, body),
      },
      body,
    });
    expect(res.status).toBe(202);
    const deadline = Date.now() + 15_000;
    while (callback.requests.length === 0 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const req = callback.requests[0];
    expect(req, runner.log).toBeDefined();
    expect(req!.headers['x-signature']).toBe(
      sign(SECRET, String(req!.headers['x-signature-timestamp']), req!.body),
    );
    expect(JSON.parse(req!.body.toString())).toMatchObject({
      inReplyTo: 'mod-1',
      user: 'ada',
      text: 'Hello module!',
    });

    // A forged signature is refused by the loaded provider, as by a built-in one.
    const forged = await fetch(`${runner.url}/webhooks/signed-webhook/acme/dev/default/hooks`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-signature-timestamp': ts,
        'x-signature': sign('wrong', ts, body),
      },
      body,
    });
    expect(forged.status).toBe(401);
  });

  it('a module that does not load stops the start with one line naming the bundle key', () => {
    const bundle = bundleWith(['./providers/missing.js']);
    const r = spawnSync(process.execPath, ['--import', './test/support/ts-loader.mjs', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, GREENTIC_BUNDLE: bundle, PORT: '0', LOG_LEVEL: 'info' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `greentic-runner: bundle ${bundle}: provider_modules[0] './providers/missing.js': cannot import: `,
    );
    expect(r.stderr).toContain(
      `Cannot find module '${path.join(path.dirname(bundle), 'providers', 'missing.')}`,
    );
  });

  it('without the module, the channel is refused, naming the registered providers', () => {
    const bundle = bundleWith([]);
    const r = spawnSync(process.execPath, ['--import', './test/support/ts-loader.mjs', 'src/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, GREENTIC_BUNDLE: bundle, PORT: '0', LOG_LEVEL: 'info' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      `key 'tenants.acme.envs.dev.teams.default.channels.hooks.provider': unknown provider 'signed-webhook'; registered providers: slack, teams, telegram, timer, webchat, webhook, whatsapp`,
    );
  });
});
