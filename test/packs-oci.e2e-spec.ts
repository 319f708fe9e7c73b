/**
 * Remote packs: push to a real OCI registry (docker-registry on loopback), pull by tag and by
 * digest, refuse digest mismatches (a wrong pin, a blob altered in the registry's storage); the
 * runner loads `oci:` and pinned `http:` sources, caches them by digest and re-verifies the cache.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import type { RunnerApp } from '../src/bootstrap.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { runCli, type CliIO } from '../src/cli/greentic-pack/cli.js';
import { generateKeyPair, publicKeyToPem } from '../src/packs/format/keys.js';
import { buildPackFromDir } from '../src/packs/format/pack-builder.js';
import { OciClient } from '../src/packs/resolvers/oci-client.js';
import { startRegistry, type TestRegistry } from './fixtures/packs/oci-registry.js';
import { replyFlow, sendMessage, writeBundle, writePackDir } from './fixtures/packs/pack-fixtures.js';

const sha = (b: Uint8Array): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const key = generateKeyPair();
let dir: string;
let registry: TestRegistry;
let v1: Buffer;
let v2: Buffer;
const apps: RunnerApp[] = [];

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l) };
  return { code: await runCli(argv, io), out: out.join('\n'), err: err.join('\n') };
}

async function start(bundle: string, cacheDir = path.join(dir, 'cache')) {
  const s = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      GREENTIC_CACHE_DIR: cacheDir,
    },
  });
  apps.push(s.app);
  return s;
}

beforeAll(async () => {
  registry = await startRegistry();
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-oci-e2e-'));
  writeFileSync(path.join(dir, 'trusted.pub'), publicKeyToPem(key.publicKey));
  writePackDir(path.join(dir, 'v1'), {
    id: 'hello',
    version: '1.0.0',
    flows: { 'hello.ygtc': replyFlow('hello', 'oci v1') },
  });
  writePackDir(path.join(dir, 'v2'), {
    id: 'hello',
    version: '2.0.0',
    flows: { 'hello.ygtc': replyFlow('hello', 'oci v2') },
  });
  v1 = (await buildPackFromDir(path.join(dir, 'v1'), { key })).bytes;
  v2 = (await buildPackFromDir(path.join(dir, 'v2'), { key })).bytes;
  writeFileSync(path.join(dir, 'v1.gtpack'), v1);
  writeFileSync(path.join(dir, 'v2.gtpack'), v2);
});

afterAll(async () => {
  for (const a of apps) await a.close();
  await registry?.stop();
});

describe('OCI registry: push and pull', () => {
  let manifestDigest: string;

  it('pushes with the CLI and reports the manifest and pack digests', async () => {
    const r = await cli('push', path.join(dir, 'v1.gtpack'), `oci:${registry.host}/greentic/hello:1.0.0`);
    expect(r.code).toBe(0);
    manifestDigest = /manifest digest: (sha256:[0-9a-f]{64})/.exec(r.out)![1]!;
    expect(r.out).toContain(`pack digest:     ${sha(v1)}`);
    const m = await fetch(`${registry.url}/v2/greentic/hello/manifests/1.0.0`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(m.headers.get('docker-content-digest')).toBe(manifestDigest);
    const body = (await m.json()) as {
      artifactType: string;
      layers: { mediaType: string; digest: string }[];
    };
    expect(body.artifactType).toBe('application/vnd.greentic.pack.v1');
    expect(body.layers).toEqual([
      expect.objectContaining({ mediaType: 'application/vnd.greentic.pack.v1+zip', digest: sha(v1) }),
    ]);
  });

  it('pulls by tag and by digest, byte for byte', async () => {
    const byTag = await cli(
      'pull',
      `oci:${registry.host}/greentic/hello:1.0.0`,
      '-o',
      path.join(dir, 'pulled-tag.gtpack'),
    );
    expect(byTag.code).toBe(0);
    expect(sha(readFileSync(path.join(dir, 'pulled-tag.gtpack')))).toBe(sha(v1));
    const byDigest = await cli(
      'pull',
      `oci:${registry.host}/greentic/hello@${manifestDigest}`,
      '-o',
      path.join(dir, 'pulled-digest.gtpack'),
    );
    expect(byDigest.code).toBe(0);
    expect(sha(readFileSync(path.join(dir, 'pulled-digest.gtpack')))).toBe(sha(v1));
  });

  it('refuses a pull whose pack digest is not the pinned one', async () => {
    const r = await cli(
      'pull',
      `oci:${registry.host}/greentic/hello:1.0.0`,
      '-o',
      path.join(dir, 'x.gtpack'),
      '--digest',
      sha(v2),
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /\[pack_digest_mismatch\]: .*the pack layer is sha256:[0-9a-f]{64}, the bundle pins sha256:/,
    );
  });

  it('refuses a blob whose bytes were altered in the registry storage', async () => {
    // Its own pack: blobs are shared across repositories, and this one is spoilt for good.
    writePackDir(path.join(dir, 'v3'), {
      id: 'hello',
      version: '3.0.0',
      flows: { 'hello.ygtc': replyFlow('hello', 'oci v3') },
    });
    const v3 = (await buildPackFromDir(path.join(dir, 'v3'), { key })).bytes;
    await new OciClient().push(`oci:${registry.host}/greentic/tampered:1`, v3, {
      id: 'hello',
      version: '3.0.0',
    });
    const hex = sha(v3).slice(7);
    const data = path.join(
      registry.storageDir,
      'docker/registry/v2/blobs/sha256',
      hex.slice(0, 2),
      hex,
      'data',
    );
    const bytes = readFileSync(data);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 30) ^ 0xff, bytes.length - 30);
    writeFileSync(data, bytes);
    await expect(
      new OciClient().pull(`oci:${registry.host}/greentic/tampered:1`, { maxBytes: 1e8 }),
    ).rejects.toMatchObject({
      code: 'pack_digest_mismatch',
      message: expect.stringMatching(/blob content is sha256:[0-9a-f]{64} .* the manifest says/),
    });
  });

  it('runner: loads an oci: source, moves with the tag on reload, and refuses a wrong pin', async () => {
    const bundle = writeBundle(path.join(dir, 'oci.yaml'), {
      policy: 'strict',
      keys: ['./trusted.pub'],
      packs: [{ id: 'hello', source: `oci:${registry.host}/greentic/hello:stable` }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    await new OciClient().push(`oci:${registry.host}/greentic/hello:stable`, v1, {
      id: 'hello',
      version: '1.0.0',
    });
    const s = await start(bundle);
    expect(
      (await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/web', { userId: 'o1', text: 'a' })).texts,
    ).toEqual(['oci v1: a']);
    await new OciClient().push(`oci:${registry.host}/greentic/hello:stable`, v2, {
      id: 'hello',
      version: '2.0.0',
    });
    const reload = (await (await fetch(`${s.url}/admin/packs/reload`, { method: 'POST' })).json()) as {
      results: { outcome: string; version: string }[];
    };
    expect(reload.results[0]).toMatchObject({ outcome: 'updated', version: '2.0.0' });
    expect(
      (await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/web', { userId: 'o2', text: 'b' })).texts,
    ).toEqual(['oci v2: b']);

    const pinned = writeBundle(path.join(dir, 'oci-pinned.yaml'), {
      policy: 'strict',
      keys: ['./trusted.pub'],
      packs: [{ id: 'hello', source: `oci:${registry.host}/greentic/hello:stable`, digest: sha(v1) }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });
    await expect(start(pinned)).rejects.toMatchObject({ code: 'pack_digest_mismatch' });
  });
});

describe('HTTP(S) resolver: digest pin required, checked, cached and re-verified', () => {
  let server: Server;
  let base: string;
  let requests = 0;
  let serveBroken = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      if (serveBroken) {
        res.writeHead(500).end('down');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/zip' }).end(req.url === '/v2.gtpack' ? v2 : v1);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const bundleFor = (name: string, digest?: string): string =>
    writeBundle(path.join(dir, `${name}.yaml`), {
      policy: 'strict',
      keys: ['./trusted.pub'],
      packs: [{ id: 'hello', source: `${base}/v1.gtpack`, ...(digest ? { digest } : {}) }],
      channels: { web: { pack: 'hello', flow: 'hello' } },
    });

  it('refuses a remote pack without a pin', async () => {
    await expect(start(bundleFor('http-nopin'), path.join(dir, 'http-nopin-cache'))).rejects.toMatchObject({
      code: 'pack_digest_pin_required',
    });
  });

  it('refuses a wrong pin', async () => {
    // Its own cache: the shared one holds v2 (from the OCI tests), and a pin is content-addressed.
    await expect(
      start(bundleFor('http-wrong', sha(v2)), path.join(dir, 'http-wrong-cache')),
    ).rejects.toMatchObject({
      code: 'pack_digest_mismatch',
      message: expect.stringMatching(/v1\.gtpack: content is sha256:[0-9a-f]{64}, the bundle pins sha256:/),
    });
  });

  it('loads with the right pin, then from the cache (re-verified) when the server is down', async () => {
    const cacheDir = path.join(dir, 'http-cache');
    const s = await start(bundleFor('http-ok', sha(v1)), cacheDir);
    expect(
      (await sendMessage(s.url, '/webhooks/webhook/acme/dev/default/web', { userId: 'h1', text: 'x' })).texts,
    ).toEqual(['oci v1: x']);
    const cached = path.join(cacheDir, 'packs/sha256', `${sha(v1).slice(7)}.gtpack`);
    expect(readdirSync(path.dirname(cached))).toEqual([path.basename(cached)]);

    serveBroken = true;
    const before = requests;
    const s2 = await start(bundleFor('http-cached', sha(v1)), cacheDir);
    expect(requests).toBe(before);
    expect(
      (await sendMessage(s2.url, '/webhooks/webhook/acme/dev/default/web', { userId: 'h2', text: 'y' }))
        .texts,
    ).toEqual(['oci v1: y']);

    // A corrupted cache file is discarded, not loaded: with the server down the load then fails.
    const b = readFileSync(cached);
    b.writeUInt8(b.readUInt8(100) ^ 0xff, 100);
    writeFileSync(cached, b);
    await expect(start(bundleFor('http-corrupt', sha(v1)), cacheDir)).rejects.toMatchObject({
      code: 'pack_fetch_failed',
    });
    expect(requests).toBe(before + 1);
  });
});
