/**
 * Hostile packs against the running runner: a good signed pack serves, then each hostile archive
 * is published over it and a reload is asked for. Each is refused with its own error code (in the
 * reload answer, the status and the logs' code), and the good version keeps answering messages.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunnerApp } from '../src/bootstrap.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { keyFingerprint, publicKeyToPem } from '../src/packs/format/keys.js';
import { buildPackFromDir } from '../src/packs/format/pack-builder.js';
import { generateKeyPair } from '../src/packs/format/keys.js';
import { hostilePacks, type HostileCase } from './fixtures/packs/hostile-packs.js';
import { replyFlow, sendMessage, writeBundle, writePackDir } from './fixtures/packs/pack-fixtures.js';

const trusted = generateKeyPair();
const untrusted = generateKeyPair();
let dir: string;
let packFile: string;
let app: RunnerApp;
let base: string;
let cases: HostileCase[];

function publish(bytes: Uint8Array): void {
  const tmp = `${packFile}.tmp`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, packFile);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-hostile-e2e-'));
  writeFileSync(path.join(dir, 'trusted.pub'), publicKeyToPem(trusted.publicKey));
  writePackDir(path.join(dir, 'src'), {
    id: 'hello',
    version: '1.0.0',
    flows: { 'hello.ygtc': replyFlow('hello', 'good v1') },
  });
  packFile = path.join(dir, 'hello.gtpack');
  publish((await buildPackFromDir(path.join(dir, 'src'), { key: trusted })).bytes);
  cases = await hostilePacks({ id: 'hello', trusted, untrusted });
  const bundle = writeBundle(path.join(dir, 'bundle.yaml'), {
    policy: 'strict',
    keys: ['./trusted.pub'],
    packs: [{ id: 'hello', source: 'file:./hello.gtpack' }],
    channels: { web: { pack: 'hello', flow: 'hello' } },
  });
  const s = await startApp({
    config: {
      PORT: 0,
      GREENTIC_BUNDLE: bundle,
      LOG_LEVEL: 'silent',
      GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
      GREENTIC_CACHE_DIR: path.join(dir, 'cache'),
    },
  });
  app = s.app;
  base = s.url;
});

afterAll(async () => {
  await app?.close();
});

const EXPECTED: [string, string][] = [
  ['zip slip (../)', 'pack_entry_path_traversal'],
  ['absolute path', 'pack_entry_path_absolute'],
  ['symlink entry', 'pack_entry_link'],
  ['duplicate entry', 'pack_entry_duplicate'],
  ['zip bomb (small file expanding past the cap)', 'pack_entry_too_large'],
  ['truncated archive', 'pack_archive_invalid'],
  ['SBOM digest mismatch', 'pack_sbom_digest_mismatch'],
  ['file missing from SBOM (present in the archive, dropped from sbom.json)', 'pack_sbom_unlisted'],
  ['file listed in the SBOM but missing from the archive', 'pack_sbom_file_missing'],
  ['extra file not in SBOM', 'pack_sbom_unlisted'],
  ['signature by an untrusted key', 'pack_signature_untrusted'],
  ['signature over other content', 'pack_signature_digest_mismatch'],
  ['malformed pack.sig', 'pack_signature_malformed'],
  ['malformed CBOR manifest', 'pack_manifest_invalid'],
  ['manifest naming a flow that is absent', 'pack_manifest_flow_missing'],
  ['flow that fails validation', 'flow_invalid'],
];

describe('hostile packs: refused, and the previous version keeps serving', () => {
  it('serves the good signed version first', async () => {
    const r = await sendMessage(base, '/webhooks/webhook/acme/dev/default/web', { userId: 'u0', text: 'hi' });
    expect(r.texts).toEqual(['good v1: hi']);
  });

  it.each(EXPECTED)('%s → %s', async (name, code) => {
    const c = cases.find((x) => x.name === name)!;
    expect(c.code).toBe(code);
    publish(c.bytes);
    const res = await fetch(`${base}/admin/packs/reload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pack: 'hello' }),
    });
    expect(res.status).toBe(422);
    const body = (await res.json()) as {
      ok: boolean;
      results: { outcome: string; version: string; error: { code: string; message: string } }[];
    };
    expect(body.ok).toBe(false);
    expect(body.results).toHaveLength(1);
    expect(body.results[0]).toMatchObject({ outcome: 'failed', version: '1.0.0', error: { code } });
    expect(body.results[0]!.error.message).toMatch(c.message);

    const st = (await (await fetch(`${base}/admin/packs/status`)).json()) as {
      packs: { version: string; signer: string; lastError: { code: string } }[];
    };
    expect(st.packs[0]).toMatchObject({
      version: '1.0.0',
      signer: keyFingerprint(trusted.publicKey),
      lastError: { code },
    });

    const r = await sendMessage(base, '/webhooks/webhook/acme/dev/default/web', {
      userId: `u-${code}`,
      text: 'still?',
    });
    expect(r.status).toBe(200);
    expect(r.texts).toEqual(['good v1: still?']);
  });

  it('a signed pack whose component cannot be prepared → component_load_failed', async () => {
    writePackDir(path.join(dir, 'badwasm'), {
      id: 'hello',
      version: '9.0.0',
      flows: { 'hello.ygtc': replyFlow('hello', 'BROKEN wasm') },
      components: { junk: new TextEncoder().encode('\0asm not really a component') },
    });
    publish((await buildPackFromDir(path.join(dir, 'badwasm'), { key: trusted })).bytes);
    const res = await fetch(`${base}/admin/packs/reload`, { method: 'POST' });
    expect(res.status).toBe(422);
    const body = (await res.json()) as {
      results: { outcome: string; version: string; error: { code: string } }[];
    };
    expect(body.results[0]).toMatchObject({
      outcome: 'failed',
      version: '1.0.0',
      error: { code: 'component_load_failed' },
    });
    expect(
      (await sendMessage(base, '/webhooks/webhook/acme/dev/default/web', { userId: 'u-wasm', text: 'ok?' }))
        .texts,
    ).toEqual(['good v1: ok?']);
  });

  it('health stays up while the previous version serves', async () => {
    const h = (await (await fetch(`${base}/health`)).json()) as {
      details: { packs: { status: string; packs: { error?: string }[] } };
    };
    expect(h.details.packs.status).toBe('up');
    expect(h.details.packs.packs[0]!.error).toMatch(/junk/);
  });
});
