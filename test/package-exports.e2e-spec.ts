import { execFileSync, spawn } from 'node:child_process';
import {
  appendFileSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * The package as a platform team installs it (issue #22 item 4): `npm pack` of greentic-runner,
 * installed in a project outside the sources, whose code imports `greentic-runner/bootstrap` and
 * `greentic-runner/providers` by name, at run time (node) and at compile time (tsc, NodeNext), and
 * whose bundle names its own provider package in `provider_modules` for the installed
 * `greentic-runner start`.
 *
 * - The package is built into a staging copy (tsc -p tsconfig.build.json), not the shared dist/,
 *   and packed from there with `npm pack`: package.json's `files` and `exports` decide what ships.
 * - Installing: the tarball is unpacked into the project's node_modules/greentic-runner, which is
 *   what `npm install <tarball>` does with the package itself. Its dependencies are not fetched (no
 *   network here): the project sits inside this repository's tree (.cache/, ignored by git), so
 *   Node and tsc find them in the repository's node_modules by the usual parent-folder lookup.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
let stage: string;
let app: string;
let packed: { filename: string; files: { path: string }[] };

function run(cmd: string, args: string[], cwd: string, timeout = 120_000): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A provider package of the platform team's, built on greentic-runner/providers only. */
const PROVIDER = `import { Injectable, Module } from '@nestjs/common';
import { GreenticProvider, replyText, str, parseJsonObject } from 'greentic-runner/providers';

// Plain JavaScript: the decorators applied as the functions they are.
class EchoProvider {
  id = 'echo-js';
  ingress(req, channel) {
    const body = parseJsonObject(req.rawBody, this.id, channel.tenantBinding.limits);
    return { messages: [{ id: str(body.id), userId: str(body.user), conversationId: str(body.user), text: str(body.text) }], wait: true };
  }
  syncResponse(replies) {
    return { status: 200, body: { texts: replies.flatMap((r) => r.replies.map(replyText)) } };
  }
  async send(_msg, _channel, delivery) {
    await delivery.replies(async () => undefined);
  }
}
GreenticProvider('echo-js')(EchoProvider);
Injectable()(EchoProvider);
export class EchoModule {}
Module({ providers: [EchoProvider] })(EchoModule);
`;

/** The embedding project's entry point: the runner by package name, started in-process. */
const MAIN = `import { startApp } from 'greentic-runner/bootstrap';
import { EchoModule } from 'echo-provider';

const { app, url } = await startApp({
  config: { PORT: 0, GREENTIC_BUNDLE: process.argv[2], LOG_LEVEL: 'warn', GREENTIC_COMPONENT_POOL_MIN: 0 },
  imports: [EchoModule],
});
const post = async (p, body) => {
  const res = await fetch(url + p, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
};
const out = {
  webhook: await post('/webhooks/webhook/acme/dev/default/web?wait=true', { userId: 'ada', text: 'packed' }),
  echo: await post('/webhooks/echo-js/acme/dev/default/echo', { id: 'e-1', user: 'bob', text: 'custom' }),
};
await app.close();
console.log('RESULT ' + JSON.stringify(out));
`;

/** Compile-time: the documented imports resolve with their types. */
const TYPED = `import { createApp, startApp, type RunnerApp } from 'greentic-runner/bootstrap';
import { GreenticProvider, ProviderAuthError, type MessagingProvider, type IngressResult } from 'greentic-runner/providers';

const start: (opts?: { config?: Record<string, string | number | undefined> }) => Promise<{ app: RunnerApp; url: string }> = startApp;
const create: typeof createApp = createApp;
const refuse = (): never => {
  throw new ProviderAuthError('x', 'no');
};
const result: IngressResult = { messages: [] };
type Ingress = MessagingProvider['ingress'];
export { start, create, refuse, result, GreenticProvider, type Ingress };
`;

beforeAll(async () => {
  mkdirSync(path.join(ROOT, '.cache'), { recursive: true });
  stage = mkdtempSync(path.join(ROOT, '.cache', 'package-exports-'));
  const pkg = path.join(stage, 'pkg');
  mkdirSync(pkg);
  for (const f of ['package.json', 'README.md', 'bin', 'wit', 'sdk'])
    cpSync(path.join(ROOT, f), path.join(pkg, f), { recursive: true });
  run(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/typescript/bin/tsc'),
      '-p',
      'tsconfig.build.json',
      '--outDir',
      path.join(pkg, 'dist'),
    ],
    ROOT,
    400_000,
  );
  [packed] = JSON.parse(run('npm', ['pack', pkg, '--json', '--pack-destination', stage], stage)) as [
    typeof packed,
  ];

  app = path.join(stage, 'app');
  const installed = path.join(app, 'node_modules', 'greentic-runner');
  mkdirSync(installed, { recursive: true });
  run('tar', ['-xzf', path.join(stage, packed.filename), '-C', installed, '--strip-components=1'], stage);
  writeFileSync(
    path.join(app, 'package.json'),
    JSON.stringify({
      name: 'embedder',
      private: true,
      type: 'module',
      dependencies: { 'greentic-runner': '0.1.0' },
    }),
  );
  writeFileSync(path.join(app, 'main.mjs'), MAIN);
  const provider = path.join(app, 'node_modules', 'echo-provider');
  mkdirSync(provider);
  writeFileSync(
    path.join(provider, 'package.json'),
    JSON.stringify({
      name: 'echo-provider',
      type: 'module',
      exports: './index.js',
      peerDependencies: { 'greentic-runner': '*' },
    }),
  );
  writeFileSync(path.join(provider, 'index.js'), PROVIDER);
  writeFileSync(path.join(app, 'typed.ts'), TYPED);
  writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        types: ['node'],
      },
      files: ['typed.ts'],
    }),
  );
}, 600_000);

afterAll(() => {
  if (stage) rmSync(stage, { recursive: true, force: true });
});

/** A bundle in the project: the generic webhook, and a channel on the custom `echo-js` provider. */
function bundleWith(providerModules: string[]): string {
  const file = writeTempBundle({
    packs: [
      {
        id: 'p',
        flows: {
          'f.ygtc': 'id: f\ntype: messaging\nnodes:\n  a:\n    reply: { text: "got {{message.text}}" }\n',
        },
      },
    ],
    tenants: {
      acme: {
        packs: ['p'],
        channels: { web: { pack: 'p', flow: 'f' }, echo: { provider: 'echo-js', pack: 'p', flow: 'f' } },
      },
    },
  });
  if (providerModules.length > 0) appendFileSync(file, stringify({ provider_modules: providerModules }));
  return file;
}

describe('the npm pack tarball, installed in another project', () => {
  it('ships the built entry points with their types, and no sources or tests', () => {
    const files = packed.files.map((f) => f.path);
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'dist/bootstrap.js',
        'dist/bootstrap.d.ts',
        'dist/messaging/providers/index.js',
        'dist/messaging/providers/index.d.ts',
        'bin/greentic-runner',
      ]),
    );
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || /\.spec\./.test(f))).toEqual(
      [],
    );
    const manifest = JSON.parse(
      readFileSync(path.join(app, 'node_modules/greentic-runner/package.json'), 'utf8'),
    ) as {
      exports: Record<string, unknown>;
    };
    expect(Object.keys(manifest.exports)).toEqual(['.', './bootstrap', './providers', './package.json']);
  });

  it('resolves greentic-runner/bootstrap and /providers by name, from the installed copy', () => {
    const where = run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "console.log(import.meta.resolve('greentic-runner/bootstrap') + ' ' + import.meta.resolve('greentic-runner/providers'))",
      ],
      app,
    ).trim();
    expect(where).toBe(
      ['dist/bootstrap.js', 'dist/messaging/providers/index.js']
        .map((f) => 'file://' + path.join(realpathSync(app), 'node_modules/greentic-runner', f))
        .join(' '),
    );
    // A path inside the package that is not an entry point is closed.
    expect(() =>
      run(
        process.execPath,
        ['--input-type=module', '-e', "await import('greentic-runner/dist/app.module.js')"],
        app,
      ),
    ).toThrow(/ERR_PACKAGE_PATH_NOT_EXPORTED/);
  });

  it('type-checks code importing both entry points (tsc, NodeNext)', () => {
    run(
      process.execPath,
      [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'],
      app,
      300_000,
    );
  });

  it('starts the runner with startApp, with a custom provider built on greentic-runner/providers', () => {
    const out = run(process.execPath, ['main.mjs', bundleWith([])], app, 120_000);
    const line = out.split('\n').find((l) => l.startsWith('RESULT '));
    expect(line, out).toBeDefined();
    expect(JSON.parse(line!.slice(7))).toEqual({
      webhook: {
        status: 200,
        body: expect.objectContaining({ replies: [expect.objectContaining({ text: 'got packed' })] }),
      },
      echo: { status: 200, body: { texts: ['got custom'] } },
    });
  });

  it("the installed bin/greentic-runner start loads the provider package the bundle's provider_modules names", async () => {
    const proc = spawn(process.execPath, ['node_modules/greentic-runner/bin/greentic-runner', 'start'], {
      cwd: app,
      env: {
        ...process.env,
        GREENTIC_BUNDLE: bundleWith(['echo-provider']),
        PORT: '0',
        LOG_LEVEL: 'info',
        LOG_FORMAT: 'json',
        GREENTIC_COMPONENT_POOL_MIN: '0',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let log = '';
    proc.stdout.on('data', (d: Buffer) => (log += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    try {
      const deadline = Date.now() + 90_000;
      let url: string | undefined;
      while (!(url = /greentic runner listening on (http:\/\/[\d.:]+)/.exec(log)?.[1])) {
        if (proc.exitCode !== null || Date.now() > deadline)
          throw new Error(`the runner did not start:\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const res = await fetch(`${url}/webhooks/echo-js/acme/dev/default/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 'e-2', user: 'cy', text: 'from the bundle' }),
      });
      expect(await res.json()).toEqual({ texts: ['got from the bundle'] });
    } finally {
      proc.kill('SIGTERM');
      await exited;
    }
  });
});
