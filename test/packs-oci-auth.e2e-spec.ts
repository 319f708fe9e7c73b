/**
 * Registries that require credentials (issue #22 item 5), against the real docker-registry:
 *   - htpasswd (HTTP Basic): `greentic-pack login` checks and stores the credentials in Docker's
 *     config.json; push and pull then use them; missing or wrong ones fail with a message that says
 *     what to do;
 *   - token auth (the distribution token flow): the registry answers 401 with
 *     `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client asks the token service (a
 *     small one here, issuing ES256 JWTs whose certificate the registry trusts) with Basic
 *     credentials and retries with the bearer token.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { importPKCS8, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../src/cli/greentic-pack/cli.js';
import { buildPackFromDir } from '../src/packs/format/pack-builder.js';
import { startRegistry, type TestRegistry } from './fixtures/packs/oci-registry.js';
import { replyFlow, writePackDir } from './fixtures/packs/pack-fixtures.js';

const USER = 'ada';
const PASSWORD = 'correct horse battery staple';
const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
let pack: string;
let packBytes: Buffer;
let basicRegistry: TestRegistry;
let tokenRegistry: TestRegistry;
let tokenServer: Server;
const tokenRequests: { authorized: boolean; scopes: string[]; service: string | null }[] = [];

async function cli(argv: string[], stdin = ''): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, async () => stdin);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

/** A fresh Docker config directory (empty) for the CLI calls that follow. */
function useDockerConfig(name: string): string {
  const d = path.join(dir, name);
  mkdirSync(d, { recursive: true });
  process.env['DOCKER_CONFIG'] = d;
  return path.join(d, 'config.json');
}

/** The token service of the distribution token spec: Basic credentials in, a JWT for the scopes out. */
async function startTokenServer(keyPem: string, certPem: string, service: string): Promise<string> {
  const key = await importPKCS8(keyPem, 'ES256');
  const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64').toString('base64');
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  tokenServer = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const scopes = url.searchParams.getAll('scope');
    const authorized = req.headers.authorization === expected;
    tokenRequests.push({ authorized, scopes, service: url.searchParams.get('service') });
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
      return;
    }
    const access = scopes.map((s) => {
      const [type, name, actions] = s.split(':');
      return { type, name, actions: (actions ?? '').split(',').filter(Boolean) };
    });
    const now = Math.floor(Date.now() / 1000);
    void new SignJWT({ access })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT', x5c: [der] })
      .setIssuer('greentic-test-issuer')
      .setSubject(USER)
      .setAudience(service)
      .setIssuedAt(now)
      .setNotBefore(now - 60)
      .setExpirationTime(now + 300)
      .setJti(randomUUID())
      .sign(key)
      .then((token) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token })),
      );
  });
  await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
  const addr = tokenServer.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/token`;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-oci-auth-'));
  writePackDir(path.join(dir, 'src'), {
    id: 'hello',
    version: '1.0.0',
    flows: { 'hello.ygtc': replyFlow('hello', 'behind a login') },
  });
  packBytes = Buffer.from((await buildPackFromDir(path.join(dir, 'src'))).bytes);
  pack = path.join(dir, 'hello.gtpack');
  writeFileSync(pack, packBytes);

  const htpasswd = path.join(dir, 'htpasswd');
  writeFileSync(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 8)}\n`);
  basicRegistry = await startRegistry([
    'auth:',
    '  htpasswd:',
    '    realm: greentic-test',
    `    path: ${htpasswd}`,
  ]);

  // A certificate for the token signer: the registry trusts tokens whose x5c chain ends in it.
  const keyFile = path.join(dir, 'token.key');
  const certFile = path.join(dir, 'token.crt');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=greentic-test-token',
    ],
    { stdio: 'ignore' },
  );
  const realm = await startTokenServer(
    readFileSync(keyFile, 'utf8'),
    readFileSync(certFile, 'utf8'),
    'greentic-test',
  );
  tokenRegistry = await startRegistry([
    'auth:',
    '  token:',
    `    realm: ${realm}`,
    '    service: greentic-test',
    '    issuer: greentic-test-issuer',
    `    rootcertbundle: ${certFile}`,
  ]);
});

afterAll(async () => {
  delete process.env['DOCKER_CONFIG'];
  await basicRegistry?.stop();
  await tokenRegistry?.stop();
  await new Promise((r) => (tokenServer ? tokenServer.close(r) : r(undefined)));
});

describe('a registry with htpasswd (Basic) auth', () => {
  it('refuses a push without credentials, saying how to log in', async () => {
    useDockerConfig('none');
    const r = await cli(['push', pack, `oci:${basicRegistry.host}/greentic/hello:1.0.0`]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`[registry_unauthorized]`);
    expect(r.err).toContain(`registry ${basicRegistry.host} requires credentials and none are stored for it`);
    expect(r.err).toContain(`greentic-pack login ${basicRegistry.host}`);
  });

  it('login refuses a wrong password and stores nothing', async () => {
    const config = useDockerConfig('wrong');
    const r = await cli(['login', basicRegistry.host, '-u', USER, '--password-stdin'], 'not the password\n');
    expect(r.code).toBe(1);
    expect(r.err).toContain(`registry ${basicRegistry.host} refused user '${USER}'`);
    expect(() => statSync(config)).toThrow();
  });

  it('login stores the credentials as docker login does; push and pull round-trip with them', async () => {
    const config = useDockerConfig('basic');
    const login = await cli(['login', basicRegistry.host, '-u', USER, '--password-stdin'], `${PASSWORD}\n`);
    expect(login.err).not.toContain('error');
    expect(login.code).toBe(0);
    expect(login.out).toBe(`Login Succeeded: credentials for ${basicRegistry.host} stored in ${config}`);
    expect(statSync(config).mode & 0o777).toBe(0o600);
    const stored = JSON.parse(readFileSync(config, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(stored.auths[basicRegistry.host]!.auth, 'base64').toString()).toBe(
      `${USER}:${PASSWORD}`,
    );

    const ref = `oci:${basicRegistry.host}/greentic/hello:1.0.0`;
    const push = await cli(['push', pack, ref]);
    expect(push.err).not.toContain('error');
    expect(push.code).toBe(0);
    expect(push.out).toContain(`pack digest:     ${sha(packBytes)}`);
    const out = path.join(dir, 'pulled-basic.gtpack');
    const pull = await cli(['pull', ref, '-o', out]);
    expect(pull.code).toBe(0);
    expect(sha(readFileSync(out))).toBe(sha(packBytes));
  });

  it('a pull with credentials the registry no longer takes names the user and the file they came from', async () => {
    const config = useDockerConfig('stale');
    writeFileSync(
      config,
      JSON.stringify({
        auths: { [`https://${basicRegistry.host}`]: { auth: Buffer.from(`${USER}:old`).toString('base64') } },
      }),
    );
    const r = await cli([
      'pull',
      `oci:${basicRegistry.host}/greentic/hello:1.0.0`,
      '-o',
      path.join(dir, 'x.gtpack'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `registry ${basicRegistry.host} refused user '${USER}' (credentials from ${config})`,
    );
  });
});

describe('a registry with token auth (Bearer realm, service, scope)', () => {
  it('gets a token with the stored credentials: login, push and pull round-trip', async () => {
    useDockerConfig('token');
    tokenRequests.length = 0;
    const login = await cli(['login', tokenRegistry.host, '-u', USER, '-p', PASSWORD]);
    expect(login.err).not.toContain('error');
    expect(login.code).toBe(0);

    const ref = `oci:${tokenRegistry.host}/greentic/hello:2.0.0`;
    const push = await cli(['push', pack, ref]);
    expect(push.err).not.toContain('error');
    expect(push.code).toBe(0);
    const out = path.join(dir, 'pulled-token.gtpack');
    const pull = await cli(['pull', ref, '-o', out]);
    expect(pull.code).toBe(0);
    expect(sha(readFileSync(out))).toBe(sha(packBytes));

    // The registry's challenges named the service and the repository scopes; every ask carried the credentials.
    expect(tokenRequests.every((t) => t.authorized && t.service === 'greentic-test')).toBe(true);
    const scopes = tokenRequests.flatMap((t) => t.scopes);
    const actions = (s: string): string[] => s.split(':')[2]!.split(',').sort();
    const repo = scopes.filter((s) => s.startsWith('repository:greentic/hello:'));
    expect(repo.map(actions)).toContainEqual(['pull', 'push']);
    expect(repo.map(actions)).toContainEqual(['pull']);
  });

  it('wrong credentials: the token service refuses them and the error says so', async () => {
    const config = useDockerConfig('token-wrong');
    writeFileSync(
      config,
      JSON.stringify({ auths: { [tokenRegistry.host]: { username: USER, password: 'nope' } } }),
    );
    const r = await cli([
      'pull',
      `oci:${tokenRegistry.host}/greentic/hello:2.0.0`,
      '-o',
      path.join(dir, 'y.gtpack'),
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `registry ${tokenRegistry.host} refused user '${USER}' (credentials from ${config})`,
    );
    const login = await cli(['login', tokenRegistry.host, '-u', USER, '-p', 'nope']);
    expect(login.code).toBe(1);
    expect(login.err).toContain(`refused user '${USER}'`);
  });
});
