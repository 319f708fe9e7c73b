/**
 * The authoring loop of issue #21, end to end, for both worlds a scaffold can target (the seed's
 * greentic:component@0.1.0 with greentic:host, and upstream's 0.6.0 node with state-store,
 * http-client and secrets-store): greentic-component new -> build -> greentic-flow validate ->
 * greentic-pack build -> greentic-runner test, the components running in the production worker
 * pool with their real host imports: session state across turns, a secret from the script and
 * an HTTP call to a local server the script allows. The project names match
 * src/cli/greentic-component/cli.spec.ts, so the componentize-js builds come from the cache.
 */
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli as componentCli } from '../src/cli/greentic-component/cli.js';
import { runFlowCli } from '../src/cli/greentic-flow/cli.js';
import { runCli as packCli } from '../src/cli/greentic-pack/cli.js';
import { runCli as runnerCli } from '../src/cli/greentic-runner/cli.js';

interface Run {
  code: number;
  out: string;
  err: string;
}

function capture(): { io: { out(l: string): void; err(l: string): void }; result(code: number): Run } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { out: (l) => out.push(l), err: (l) => err.push(l) },
    result: (code) => ({ code, out: out.join('\n'), err: err.join('\n') }),
  };
}

async function component(...argv: string[]): Promise<Run> {
  const c = capture();
  return c.result(await componentCli(argv, c.io));
}
async function flow(...argv: string[]): Promise<Run> {
  const c = capture();
  return c.result(await runFlowCli(argv, c.io));
}
async function pack(...argv: string[]): Promise<Run> {
  const c = capture();
  return c.result(await packCli(argv, c.io));
}
async function runner(...argv: string[]): Promise<Run> {
  const c = capture();
  return c.result(await runnerCli(argv, { io: c.io }));
}

let dir: string;
let server: Server;
let api: string;
const requests: Array<{ path: string; auth: string | undefined }> = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'greentic-authoring-'));
  // The "external API" the components call: echoes the path and the bearer token it got.
  server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', auth: req.headers.authorization });
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ path: req.url, auth: req.headers.authorization ?? null }));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  api = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((ok) => server.close(ok));
  await rm(dir, { recursive: true, force: true });
});

/** new -> build -> a pack directory holding the built component and `flowText`. */
async function scaffoldPack(name: string, world: string, flowId: string, flowText: string): Promise<string> {
  const created = await component('new', name, '--world', world, '--dir', dir);
  expect(created.code, created.err).toBe(0);
  const project = join(dir, name);
  const built = await component('build', project);
  expect(built.code, built.err).toBe(0);
  expect(built.err).toMatch(new RegExp(`\\[${name}\\] (cache +hit|componentize done)`));
  const packDir = join(dir, `${name}-pack`);
  await mkdir(join(packDir, 'flows'), { recursive: true });
  await mkdir(join(packDir, 'components'), { recursive: true });
  await copyFile(join(project, 'dist', `${name}.wasm`), join(packDir, 'components', `${name}.wasm`));
  await writeFile(join(packDir, 'flows', `${flowId}.ygtc`), flowText);
  await writeFile(
    join(packDir, 'pack.yaml'),
    `id: ${name}-pack\nversion: 0.1.0\nflows:\n  - flows/${flowId}.ygtc\ncomponents:\n  - name: ${name}\n    version: 0.1.0\n    path: components/${name}.wasm\n`,
  );
  const validated = await flow('validate', packDir);
  expect(validated.code, validated.out + validated.err).toBe(0);
  expect(validated.out).toContain('0 errors');
  const gtpack = join(dir, `${name}.gtpack`);
  const packed = await pack('build', packDir, '-o', gtpack);
  expect(packed.code, packed.err).toBe(0);
  return gtpack;
}

async function script(file: string, text: string): Promise<string> {
  const path = join(dir, file);
  await writeFile(path, text);
  return path;
}

describe('authoring loop: new -> build -> validate -> pack -> test, with host imports', () => {
  it('seed world 0.1.0 (greentic:host state, secrets, http, log)', async () => {
    const gtpack = await scaffoldPack(
      'shouter',
      '0.1',
      'shout',
      `id: shout
type: messaging
nodes:
  shout:
    component.exec:
      component: shouter
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "{{shout.payload}}" }
`,
    );
    const passing = await script(
      'shout.yaml',
      `name: shouter answers, counts and fetches
secrets: { api_token: t0k-01 }
http: { allow: ["${api}"] }
turn_timeout: 20s
turns:
  - user: hello
    expect: [hello]
  - user: fetch http://${api}/weather?q=paris
    expect: ['200 {"path":"/weather?q=paris","auth":"Bearer t0k-01"} (message 2)']
`,
    );
    const ok = await runner('test', gtpack, passing);
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(ok.out).toContain('PASS shouter answers, counts and fetches');
    expect(requests.some((r) => r.auth === 'Bearer t0k-01')).toBe(true);

    // Without the secret in the script, the failure names the secret that is missing.
    const noSecret = await script(
      'shout-no-secret.yaml',
      `name: no secret
http: { allow: ["${api}"] }
turn_timeout: 20s
turns:
  - user: fetch http://${api}/x
    expect: [never]
`,
    );
    const refused = await runner('test', gtpack, noSecret);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain("secret 'api_token' is not allowed for this binding");
  }, 600_000);

  it('upstream world 0.6.0 (state-store, secrets-store, http-client)', async () => {
    const gtpack = await scaffoldPack(
      'upgreeter',
      'upstream',
      'greet',
      `id: greet
type: messaging
nodes:
  greet:
    component.exec:
      component: upgreeter
      operation: greet
      args:
        name: Ada
        url: http://${api}/hello
    routing:
      - to: answer
  answer:
    reply: { text: "{{greet.payload.text}} {{greet.payload.status}} {{greet.payload.body}}" }
`,
    );
    const passing = await script(
      'greet.yaml',
      `name: upgreeter greets twice
secrets: { api_token: t0k-06 }
http: { allow: ["${api}"] }
turn_timeout: 20s
turns:
  - user: hi
    expect: ['Hello Ada (1) 200 {"path":"/hello","auth":"Bearer t0k-06"}']
  - user: again
    expect: ['Hello Ada (2) 200 {"path":"/hello","auth":"Bearer t0k-06"}']
`,
    );
    const ok = await runner('test', gtpack, passing);
    expect(ok.code, ok.out + ok.err).toBe(0);
    expect(ok.out).toContain('PASS upgreeter greets twice');

    // Without http.allow, the failure names the interface and the host that is not allowed.
    const noHttp = await script(
      'greet-no-http.yaml',
      `name: no http
secrets: { api_token: t0k-06 }
turn_timeout: 20s
turns:
  - user: hi
    expect: [never]
`,
    );
    const refused = await runner('test', gtpack, noHttp);
    expect(refused.code).toBe(1);
    expect(refused.out).toContain(
      `greentic:http/http-client: host '${api}' is not on this tenant's HTTP allow-list`,
    );
  }, 600_000);
});
