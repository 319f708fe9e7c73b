/**
 * Signed packs end to end: the greentic-pack CLI makes keys, builds (twice, identically), signs,
 * verifies (exit codes), inspects; the runner loads the signed archive under the strict policy and
 * a message runs its flow. Also: the trust rules of the runner (directory under strict, dev in a
 * prod environment) and the admin routes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunnerApp } from '../src/bootstrap.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { runCli, type CliIO } from '../src/cli/greentic-pack/cli.js';
import {
  componentFlow,
  replyFlow,
  sendMessage,
  watComponent,
  writeBundle,
  writePackDir,
} from './fixtures/packs/pack-fixtures.js';

const sha256 = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await runCli(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let dir: string;
const apps: RunnerApp[] = [];

async function start(bundle: string, extra: Record<string, string | number> = {}) {
  const s = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      GREENTIC_CACHE_DIR: path.join(dir, 'cache'),
      ...extra,
    },
  });
  apps.push(s.app);
  return s;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-packs-e2e-'));
  writePackDir(path.join(dir, 'src'), {
    id: 'hello',
    version: '1.0.0',
    flows: { 'hello.ygtc': replyFlow('hello', 'v1'), 'echo.ygtc': componentFlow('echo', 'echo', 'v1 echo') },
    components: { echo: await watComponent(0) },
    assets: { 'greeting.txt': 'hello' },
  });
});

afterAll(async () => {
  for (const a of apps) await a.close();
});

describe('greentic-pack CLI: keys, build, sign, verify, inspect', () => {
  it('generates key pairs: private key mode 0600, PEM or JWK', async () => {
    const pem = await cli('keys', 'generate', '-o', path.join(dir, 'keys/release'));
    expect(pem.code).toBe(0);
    expect(pem.out).toMatch(/fingerprint: [0-9a-f]{64}/);
    expect(statSync(path.join(dir, 'keys/release.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'keys/release.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/);
    const json = await cli('keys', 'generate', '-o', path.join(dir, 'keys/other'), '--format', 'json');
    expect(json.code).toBe(0);
    expect(statSync(path.join(dir, 'keys/other.key.json')).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(path.join(dir, 'keys/other.pub.json'), 'utf8'))).toMatchObject({
      kty: 'OKP',
      crv: 'Ed25519',
    });
    const again = await cli('keys', 'generate', '-o', path.join(dir, 'keys/release'));
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/release\.key: already exists/);
  });

  it('builds the same inputs into byte-identical packs (SHA-256)', async () => {
    const a = await cli('build', path.join(dir, 'src'), '-o', path.join(dir, 'a.gtpack'));
    const b = await cli('build', path.join(dir, 'src'), '-o', path.join(dir, 'b.gtpack'));
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.out).toMatch(/built .*a\.gtpack: hello@1\.0\.0, 2 flow\(s\), 1 component\(s\)/);
    expect(a.err).toMatch(/… validating 2 flow\(s\)/);
    expect(sha256(path.join(dir, 'a.gtpack'))).toBe(sha256(path.join(dir, 'b.gtpack')));
  });

  it('signs, and verify answers 0 for a trusted key, 3 for an untrusted or missing one, 2 for a tampered pack', async () => {
    const pack = path.join(dir, 'hello.gtpack');
    expect((await cli('build', path.join(dir, 'src'), '-o', pack)).code).toBe(0);
    expect((await cli('verify', pack, '--trust', path.join(dir, 'keys/release.pub'))).code).toBe(1);
    const s = await cli('sign', pack, '--key', path.join(dir, 'keys/release.key'));
    expect(s.code).toBe(0);
    const ok = await cli('verify', pack, '--trust', path.join(dir, 'keys/release.pub'));
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/^ok: .*hello@1\.0\.0, signed by trusted key [0-9a-f]{64}/);
    const untrusted = await cli('verify', pack, '--trust', path.join(dir, 'keys/other.pub.json'));
    expect(untrusted.code).toBe(1);
    expect(untrusted.err).toMatch(/untrusted \[pack_signature_untrusted\]: .*hello\.gtpack: signed by key/);
    const dev = await cli('verify', pack, '--policy', 'dev', '--json');
    expect(dev.code).toBe(0);
    expect(JSON.parse(dev.out)).toMatchObject({ ok: true, signer: null });

    const bytes = readFileSync(pack);
    const at = bytes.indexOf(Buffer.from('v1: {{message.text}}'));
    expect(at).toBeGreaterThan(0);
    const tampered = Buffer.from(bytes);
    tampered.write('V1', at);
    writeFileSync(path.join(dir, 'tampered.gtpack'), tampered);
    const bad = await cli(
      'verify',
      path.join(dir, 'tampered.gtpack'),
      '--trust',
      path.join(dir, 'keys/release.pub'),
    );
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(
      /invalid \[pack_sbom_digest_mismatch\]: .*tampered\.gtpack: 'flows\/hello\/flow\.(json|ygtc)' has BLAKE3 [0-9a-f]{64}, sbom\.json says/,
    );
  });

  it('inspects: human tables and --json (manifest, flows, components, SBOM, signer)', async () => {
    const pack = path.join(dir, 'hello.gtpack');
    const human = await cli('inspect', pack);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^pack\s+hello@1\.0\.0/m);
    expect(human.out).toMatch(/^signature\s+ed25519, key [0-9a-f]{64}/m);
    // name, version, world and operations (read at build time), file.
    expect(human.out).toMatch(
      /^\s+echo\s+0\.1\.0\s+0\.1\.0\s+execute\s+components\/echo@0\.1\.0\/component\.wasm/m,
    );
    expect(human.out).toMatch(/^\s+assets\/greeting\.txt\s+5\s+text\/plain/m);
    const json = JSON.parse((await cli('inspect', pack, '--json')).out) as {
      manifest: { meta: { pack_id: string }; flows: { id: string }[] };
      sbom: { path: string }[];
      signature: { key_fingerprint: string };
    };
    expect(json.manifest.meta.pack_id).toBe('hello');
    expect(json.manifest.flows.map((f) => f.id)).toEqual(['echo', 'hello']);
    expect(json.sbom.map((e) => e.path)).toContain('manifest.cbor');
    expect(json.signature.key_fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses to build a pack whose flow fails validation, naming file and line, and writes nothing', async () => {
    const bad = writePackDir(path.join(dir, 'bad-src'), {
      id: 'bad',
      flows: {
        'bad.ygtc':
          'id: bad\ntype: messaging\nnodes:\n  a:\n    reply: { text: "x" }\n    routing:\n      - to: nowhere\n',
      },
    });
    const r = await cli('build', bad, '-o', path.join(dir, 'bad.gtpack'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error \[flow_invalid\]: .*pack\.yaml: 1 flow error\(s\), nothing written/);
    expect(r.err).toMatch(/bad\.ygtc:\d+:\d+: error: .*nowhere/);
    expect(() => statSync(path.join(dir, 'bad.gtpack'))).toThrow();
  });
});

describe('runner: a signed pack under the strict policy', () => {
  let base: string;

  beforeAll(async () => {
    const bundle = writeBundle(path.join(dir, 'bundle.yaml'), {
      policy: 'strict',
      keys: ['./keys/release.pub'],
      packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
      channels: { web: { pack: 'hello', flow: 'hello' }, echo: { pack: 'hello', flow: 'echo' } },
    });
    base = (await start(bundle)).url;
  });

  it('loads the verified archive and runs its flows, the component one included', async () => {
    const r = await sendMessage(base, '/webhooks/webhook/acme/dev/default/web', {
      userId: 'u1',
      text: 'ping',
    });
    expect(r.status).toBe(200);
    expect(r.texts).toEqual(['v1: ping']);
    const e = await sendMessage(base, '/webhooks/webhook/acme/dev/default/echo', {
      userId: 'u1',
      text: 'pong',
    });
    expect(e.texts).toEqual(['v1 echo: pong']);
  });

  it('shows the signer and policy in /admin/packs/status, and the pack in /health', async () => {
    const st = (await (await fetch(`${base}/admin/packs/status`)).json()) as {
      trust: { policy: string; keys: { fingerprint: string }[] };
      packs: { pack: string; version: string; signer: string; warnings: string[] }[];
    };
    expect(st.trust.policy).toBe('strict');
    expect(st.packs[0]).toMatchObject({
      pack: 'hello',
      version: '1.0.0',
      signer: st.trust.keys[0]!.fingerprint,
      warnings: [],
    });
    const h = (await (await fetch(`${base}/health`)).json()) as { details: { packs: { status: string } } };
    expect(h.details.packs.status).toBe('up');
  });

  it('refuses a pack directory under the strict policy', async () => {
    const bundle = writeBundle(path.join(dir, 'strict-dir.yaml'), {
      policy: 'strict',
      keys: ['./keys/release.pub'],
      packs: [{ id: 'hello', source: 'file:./src' }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    await expect(start(bundle)).rejects.toMatchObject({
      code: 'pack_signature_missing',
      message: expect.stringMatching(/pack directory is unsigned/),
    });
  });

  it('refuses the dev policy for a tenant with a prod environment', async () => {
    const bundle = writeBundle(path.join(dir, 'dev-prod.yaml'), {
      policy: 'dev',
      env: 'prod',
      packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    await expect(start(bundle)).rejects.toMatchObject({
      code: 'pack_policy_forbidden',
      message: expect.stringMatching(/'dev' is refused for tenant 'acme'/),
    });
  });

  it('loads an untrusted-key pack under dev with the warning in status and /health', async () => {
    const bundle = writeBundle(path.join(dir, 'dev.yaml'), {
      policy: 'dev',
      packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    const s = await start(bundle);
    const r = await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/web', {
      userId: 'u2',
      text: 'dev',
    });
    expect(r.texts).toEqual(['v1: dev']);
    const h = (await (await fetch(`${s.url}/health`)).json()) as {
      details: { packs: { packs: { warnings: string[] }[] } };
    };
    expect(h.details.packs.packs[0]!.warnings[0]).toMatch(
      /signed by untrusted key [0-9a-f]{64} \(signature valid; allowed by the dev trust policy\)/,
    );
  });

  it('applies an overlay pack: its flows replace same-id flows of the main pack', async () => {
    writePackDir(path.join(dir, 'overlay-src'), {
      id: 'branding',
      version: '2.0.0',
      flows: { 'hello.ygtc': replyFlow('hello', 'branded') },
    });
    expect(
      (
        await cli(
          'build',
          path.join(dir, 'overlay-src'),
          '-o',
          path.join(dir, 'branding.gtpack'),
          '--key',
          path.join(dir, 'keys/release.key'),
        )
      ).code,
    ).toBe(0);
    const bundle = path.join(dir, 'overlay.yaml');
    writeBundle(bundle, {
      policy: 'strict',
      keys: ['./keys/release.pub'],
      packs: [
        {
          id: 'hello',
          source: 'file:./hello.gtpack',
          overlays: [{ id: 'branding', source: 'file:./branding.gtpack' }],
        },
      ],
      channels: { web: { pack: 'hello', flow: 'hello' }, echo: { pack: 'hello', flow: 'echo' } },
    });
    const s = await start(bundle);
    expect(
      (await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/web', { userId: 'o1', text: 'hi' }))
        .texts,
    ).toEqual(['branded: hi']);
    // Flows the overlay does not name stay the main pack's, with its components.
    expect(
      (await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/echo', { userId: 'o1', text: 'yo' }))
        .texts,
    ).toEqual(['v1 echo: yo']);
    const st = (await (await fetch(`${s.url}/admin/packs/status`)).json()) as {
      packs: { version: string; overlays: { id: string; version: string }[] }[];
    };
    expect(st.packs[0]).toMatchObject({
      version: '1.0.0+branding.2.0.0',
      overlays: [{ id: 'branding', version: '2.0.0' }],
    });
  });

  it('admin routes want the token when one is configured', async () => {
    const bundle = writeBundle(path.join(dir, 'token.yaml'), {
      policy: 'strict',
      keys: ['./keys/release.pub'],
      packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    const s = await start(bundle, { GREENTIC_ADMIN_TOKEN: 's3cret-token' });
    const none = await fetch(`${s.url}/admin/packs/status`);
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: 'admin_unauthorized' } });
    expect(
      (await fetch(`${s.url}/admin/packs/status`, { headers: { 'x-admin-token': 'wrong' } })).status,
    ).toBe(401);
    const ok = await fetch(`${s.url}/admin/packs/reload`, {
      method: 'POST',
      headers: { 'x-admin-token': 's3cret-token' },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({
      ok: true,
      results: [{ tenant: 'acme', pack: 'hello', outcome: 'unchanged' }],
    });
  });
});
