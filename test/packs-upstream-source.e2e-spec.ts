/**
 * Upstream's pack.yaml source layout (issue #18 item 5): `greentic-pack build` of a directory written the
 * way packc expects it (pack_id, components[].wasm, flows[].file with a `.ygtc.resolve.json` sidecar,
 * assets[].path) gives a pack-v1 archive with pack.lock.cbor and sbom.cbor that verify and inspect accept
 * and the runner serves; `greentic-flow validate` checks that directory's flows and its sidecar.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerApp } from '../src/bootstrap.js';
import { startApp } from '../src/bootstrap.js';
import { runFlowCli } from '../src/cli/greentic-flow/cli.js';
import { runCli } from '../src/cli/greentic-pack/cli.js';
import { decodeCanonical } from '../src/packs/format/canonical-cbor.js';
import { generateKeyPair, keyFingerprint, publicKeyToPem, secretKeyToPem } from '../src/packs/format/keys.js';
import { effectiveComponentId } from '../src/flows/flow-v1.js';
import { SBOM_CBOR, buildSbomV1 } from '../src/packs/format/pack-v1/sbom-v1.js';
import { readArchive } from '../src/packs/format/zip-reader.js';
import { writeDeterministicZip } from '../src/packs/format/zip-writer.js';
import { openAnyPack } from '../src/packs/verify/open-any-pack.js';
import { trustPolicy } from '../src/packs/verify/trust.js';
import { sendMessage, watComponent, writeBundle } from './fixtures/packs/pack-fixtures.js';

const FIXTURE = path.resolve('test/fixtures/packs/upstream-echo');

interface Run {
  code: number;
  out: string;
  err: string;
}

async function pack(...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

async function flow(cwd: string, ...argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runFlowCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, cwd);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

let root: string;

/** A copy of the fixture with its component assembled, so each test can break its own copy. */
async function sourceCopy(name: string): Promise<string> {
  const dir = path.join(root, name);
  cpSync(FIXTURE, dir, { recursive: true });
  writeFileSync(path.join(dir, 'components/echo/echo.wasm'), await watComponent(11));
  return dir;
}

function sidecarOf(dir: string): string {
  return path.join(dir, 'flows/on_message.ygtc.resolve.json');
}

beforeAll(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'gt-upstream-src-'));
});

describe('greentic-pack build: upstream pack.yaml layout', () => {
  let src: string;
  let built: string;
  let buildRun: Run;
  let app: RunnerApp | undefined;

  beforeAll(async () => {
    src = await sourceCopy('good');
    built = path.join(root, 'upstream-echo.gtpack');
    buildRun = await pack('build', src, '-o', built);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('builds pack-v1 with pack.lock.cbor, sbom.cbor, the component and the assets the way packc maps them', async () => {
    const r = buildRun;
    expect(r.err).not.toMatch(/error/);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(
      /pack-v1, from upstream's pack.yaml layout\): upstream-echo@0\.1\.0, 1 flow\(s\), 1 component\(s\)/,
    );
    const files = await readArchive(readFileSync(built), built);
    expect([...files.keys()].sort()).toEqual([
      'assets/assets/i18n/en.json',
      'assets/i18n/en.json',
      'components/echo.wasm',
      'manifest.cbor',
      'pack.lock.cbor',
      'sbom.cbor',
    ]);
    const lock = decodeCanonical(files.get('pack.lock.cbor')!) as {
      version: number;
      components: Record<string, { component_id: string; ref: string; resolved_digest: string }>;
    };
    expect(lock.version).toBe(1);
    expect(lock.components['echo']).toMatchObject({ component_id: 'echo', ref: 'file://components/echo' });
    expect(lock.components['echo']!.resolved_digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('binds the node the sidecar names to the pack component; verify and inspect accept the archive', async () => {
    const opened = await openAnyPack(readFileSync(built), { label: built, policy: trustPolicy('dev', []) });
    expect(opened.format).toBe('pack-v1');
    if (opened.format !== 'pack-v1') return;
    const f = opened.pack.manifest.flows[0]!;
    expect(f).toMatchObject({ id: 'on_message', kind: 'messaging', tags: ['messaging', 'default'] });
    const call = f.flow.nodes.find((n) => n.id === 'call_echo')!;
    expect(effectiveComponentId(call)).toBe('echo');
    expect(f.flow.entrypoints).toEqual({ default: 'call_echo' });

    const v = await pack('verify', built, '--policy', 'dev', '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.out)).toMatchObject({ ok: true, format: 'pack-v1', pack: 'upstream-echo' });
    const i = await pack('inspect', built);
    expect(i.code).toBe(0);
    expect(i.out).toContain('on_message');
    expect(i.out).toContain('echo');
  });

  it('signs the pack-v1 way with --key; strict verify accepts it with the key and refuses it without', async () => {
    const kp = generateKeyPair();
    writeFileSync(path.join(root, 'k.key'), secretKeyToPem(kp));
    writeFileSync(path.join(root, 'k.pub'), publicKeyToPem(kp.publicKey));
    const signed = path.join(root, 'signed.gtpack');
    const b = await pack('build', src, '-o', signed, '--key', path.join(root, 'k.key'));
    expect(b.code).toBe(0);
    expect(b.out).toContain(`signed by ${keyFingerprint(kp.publicKey)}`);
    const ok = await pack('verify', signed, '--trust', path.join(root, 'k.pub'));
    expect(ok.code).toBe(0);
    expect(ok.out).toContain(`signed by trusted key ${keyFingerprint(kp.publicKey)}`);
    expect((await pack('verify', signed)).code).toBe(1);

    // An asset swapped after signing, the SBOM rewritten to match: the manifest's pins still refuse it.
    const files = await readArchive(readFileSync(signed), signed);
    const payload = [...files]
      .filter(([p]) => p !== SBOM_CBOR)
      .map(([p, bytes]) => ({
        path: p,
        bytes: p === 'assets/i18n/en.json' ? new TextEncoder().encode('{"greeting":"pwned"}') : bytes,
      }));
    const swapped = path.join(root, 'swapped.gtpack');
    writeFileSync(
      swapped,
      await writeDeterministicZip([...payload, { path: SBOM_CBOR, bytes: buildSbomV1(payload) }]),
    );
    const bad = await pack('verify', swapped, '--trust', path.join(root, 'k.pub'));
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('pack_manifest_hash_mismatch');
  });

  it('the runner serves the built archive: the component node runs, then emit.response answers', async () => {
    const rdir = path.join(root, 'runner');
    cpSync(built, path.join(rdir, 'upstream-echo.gtpack'));
    const bundle = writeBundle(path.join(rdir, 'bundle.yaml'), {
      policy: 'dev',
      tenant: 'upsrc',
      packs: [{ id: 'upstream-echo', source: 'file:./upstream-echo.gtpack' }],
      channels: { web: { pack: 'upstream-echo', flow: 'on_message' } },
    });
    const s = await startApp({
      config: {
        PORT: 0,
        GREENTIC_BUNDLE: bundle,
        LOG_LEVEL: 'silent',
        GREENTIC_PACK_WATCH_INTERVAL_MS: 0,
        GREENTIC_CACHE_DIR: path.join(rdir, 'cache'),
      },
    });
    app = s.app;
    const r = await sendMessage(s.url, '/webhooks/webhook/upsrc/dev/default/web', {
      userId: 'u1',
      text: 'hi',
    });
    expect(r.status).toBe(200);
    // prev is the component's output (the 0.1 echo answers its input): it ran.
    expect(r.texts).toEqual(['Echo: hi']);
  });

  it('refuses a remote component source in the offline build, naming the node and the way out', async () => {
    const dir = await sourceCopy('remote');
    const sc = JSON.parse(readFileSync(sidecarOf(dir), 'utf8')) as { nodes: Record<string, unknown> };
    sc.nodes['call_echo'] = { source: { kind: 'oci', ref: 'oci://ghcr.io/example/components/echo:0.1.0' } };
    writeFileSync(sidecarOf(dir), JSON.stringify(sc, null, 2));
    const r = await pack('build', dir, '-o', path.join(root, 'remote.gtpack'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /on_message\.ygtc\.resolve\.json:5:5: error: node 'call_echo' of flow 'on_message' is bound to oci/,
    );
    expect(r.err).toContain('this build is offline');
  });
});

describe('greentic-flow validate: upstream pack directory', () => {
  it('reports the flows pack.yaml lists (not "0 files") and exits 0 on the good fixture', async () => {
    const dir = await sourceCopy('validate-good');
    const r = await flow(dir, 'validate', '.', '--json');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as { files: { file: string; flow?: string }[]; errors: number };
    expect(report.errors).toBe(0);
    expect(report.files).toEqual([
      { file: 'flows/on_message.ygtc', flow: 'on_message', errors: 0, warnings: 0 },
    ]);
    const human = await flow(dir, 'validate', '.');
    expect(human.out).toContain('1 file: 0 errors, 0 warnings');
  });

  it('honours the sidecar: without it the component.exec node names no pack component', async () => {
    const dir = await sourceCopy('validate-nosidecar');
    writeFileSync(sidecarOf(dir), '{"schema_version": 1, "flow": "on_message.ygtc", "nodes": {}}');
    const r = await flow(dir, 'validate', '.');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /flows\/on_message\.ygtc:6:3: error: flow 'on_message': node 'call_echo' calls component 'oci:\/\/ghcr\.io\/example\/components\/echo:0\.1\.0', which the pack does not carry \[unknown_component\]/,
    );
  });

  it('a sidecar naming a node the flow lacks or a component the pack lacks is an error naming both', async () => {
    const dir = await sourceCopy('validate-broken');
    writeFileSync(
      sidecarOf(dir),
      JSON.stringify(
        {
          schema_version: 1,
          flow: 'on_message.ygtc',
          nodes: {
            call_echo: { source: { kind: 'local', path: '../components/missing.wasm' } },
            ghost: { source: { kind: 'local', path: '../components/echo/echo.wasm' } },
          },
        },
        null,
        2,
      ),
    );
    const r = await flow(dir, 'validate', '.');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(
      /flows\/on_message\.ygtc\.resolve\.json:5:5: error: binds node 'call_echo' of flow 'on_message' to '\.\.\/components\/missing\.wasm', which is no component of the pack \(pack components: echo \(components\/echo\)\) \[sidecar_unknown_component\]/,
    );
    expect(r.out).toMatch(
      /flows\/on_message\.ygtc\.resolve\.json:11:5: error: binds node 'ghost', which flow 'on_message' \(on_message\.ygtc\) does not have \(its nodes: call_echo, answer\) \[sidecar_unknown_node\]/,
    );
  });

  it('reports flow errors at file:line:col: an unknown route target, an upstream-refused flow type', async () => {
    const dir = await sourceCopy('validate-flow-errors');
    const file = path.join(dir, 'flows/on_message.ygtc');
    writeFileSync(
      file,
      readFileSync(file, 'utf8')
        .replace('type: messaging', 'type: webhook')
        .replace('- to: answer', '- to: nowhere'),
    );
    const r = await flow(dir, 'validate', '.');
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/flows\/on_message\.ygtc:3:7: error: type 'webhook' is not one upstream compiles/);
    expect(r.out).toMatch(
      /flows\/on_message\.ygtc:11:13: error: node 'call_echo' routes to unknown node 'nowhere'/,
    );
  });
});
