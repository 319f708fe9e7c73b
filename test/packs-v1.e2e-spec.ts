/**
 * Upstream's pack-v1 layout, as this project's `greentic-pack build --format pack-v1` writes it: the
 * byte-level round trip (archive → manifest → the same bytes), the older layout with the self-describe
 * tag and declaration-order keys, and hostile variants refused with their codes — by the reader directly
 * and by the running runner, which keeps serving the good version.
 */
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunnerApp } from '../src/bootstrap.js';
import { startApp } from '../src/bootstrap.js';
import { runCli } from '../src/cli/greentic-pack/cli.js';
import { decodeCanonical } from '../src/packs/format/canonical-cbor.js';
import {
  DEFAULT_ARCHIVE_LIMITS,
  MANIFEST_CBOR,
  MANIFEST_JSON,
  SBOM_JSON,
} from '../src/packs/format/constants.js';
import { generateKeyPair, keyFingerprint, publicKeyToPem, secretKeyToPem } from '../src/packs/format/keys.js';
import { buildPackFromDir } from '../src/packs/format/pack-builder.js';
import { effectiveComponentId } from '../src/flows/flow-v1.js';
import {
  decodeManifestV1,
  encodeManifestV1,
  type PackV1Manifest,
} from '../src/packs/format/pack-v1/manifest-v1.js';
import {
  assemblePackV1,
  buildPackV1FromDir,
  type PackV1Archive,
} from '../src/packs/format/pack-v1/pack-v1-writer.js';
import { SBOM_CBOR, buildSbomV1 } from '../src/packs/format/pack-v1/sbom-v1.js';
import { decodeWire, encodeWire, jsonToWire, type WireMap } from '../src/packs/format/pack-v1/wire-cbor.js';
import { buildSbom } from '../src/packs/format/sbom.js';
import { writeDeterministicZip, type PackFile } from '../src/packs/format/zip-writer.js';
import { contentsOfV1 } from '../src/packs/sources/gtpack.source.js';
import { openAnyPack } from '../src/packs/verify/open-any-pack.js';
import { trustPolicy } from '../src/packs/verify/trust.js';
import {
  componentFlow,
  rawZip,
  replyFlow,
  sendMessage,
  watComponent,
  writeBundle,
  writePackDir,
} from './fixtures/packs/pack-fixtures.js';

const trusted = generateKeyPair();
const untrusted = generateKeyPair();
const strict = trustPolicy('strict', [
  { fingerprint: keyFingerprint(trusted.publicKey), publicKey: trusted.publicKey, source: 'test' },
]);
const dev = trustPolicy('dev', []);
const REVERSE_DNS_ID = 'ai.greentic.runner.example';

let dir: string;

function withoutWire(m: PackV1Manifest): Omit<PackV1Manifest, 'wire'> {
  const { wire: _wire, ...rest } = m;
  return rest;
}

/** A pack-v1 archive from payload files and raw manifest bytes, with a fresh SBOM. */
function repack(payload: readonly PackFile[], manifestBytes: Uint8Array): Promise<Buffer> {
  const all = [{ path: MANIFEST_CBOR, bytes: manifestBytes }, ...payload];
  return writeDeterministicZip([...all, { path: SBOM_CBOR, bytes: buildSbomV1(all) }]);
}

function payloadOf(a: PackV1Archive): PackFile[] {
  return a.files.filter((f) => f.path !== MANIFEST_CBOR && f.path !== SBOM_CBOR);
}

async function refusal(bytes: Uint8Array, policy = strict, expectedId?: string): Promise<string> {
  try {
    await openAnyPack(bytes, { label: 'hostile.gtpack', policy, ...(expectedId ? { expectedId } : {}) });
  } catch (e) {
    return (e as { code: string }).code;
  }
  return 'accepted';
}

interface V1Case {
  name: string;
  code: string;
  bytes: Uint8Array;
}

/** One hostile archive per fault, each differing from a good signed pack-v1 archive by that fault only. */
async function hostileV1(good: PackV1Archive): Promise<V1Case[]> {
  const payload = payloadOf(good);
  const wasmPath = 'components/echo.wasm';
  const wasm = payload.find((f) => f.path === wasmPath)!.bytes;
  const flipped = new Uint8Array(wasm);
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 0xff;
  const swapped = payload.map((f) => (f.path === wasmPath ? { path: wasmPath, bytes: flipped } : f));
  const unsigned: PackV1Manifest = { ...good.manifest, signatures: [] };

  // A node id index past the end of symbols.node_ids.
  const wire = decodeWire(good.manifestBytes) as WireMap;
  const flow0 = ((wire.get('flows') as WireMap[])[0]!.get('flow') as WireMap).get('nodes') as WireMap[];
  flow0[0]!.set('id', 99);

  // The node still calls `echo`, but neither the wasm nor its declaration is in the pack.
  const noEcho: PackV1Manifest = {
    ...unsigned,
    components: [],
    extensions: { 'greentic.pack-mode.v1': unsigned.extensions!['greentic.pack-mode.v1']! },
  };

  return [
    {
      name: 'SBOM digest mismatch (a component changed after the SBOM was written)',
      code: 'pack_sbom_digest_mismatch',
      bytes: await writeDeterministicZip(
        good.files.map((f) => (f.path === wasmPath ? { path: wasmPath, bytes: flipped } : f)),
      ),
    },
    {
      name: "component digest mismatch (wasm swapped, SBOM refreshed; the signed manifest's sha256 differs)",
      code: 'pack_manifest_hash_mismatch',
      bytes: await repack(swapped, good.manifestBytes),
    },
    {
      name: 'flow source changed after signing (SBOM refreshed; the manifest pins its sha256)',
      code: 'pack_manifest_hash_mismatch',
      bytes: await repack(
        payload.map((f) =>
          f.path === 'flows/hello/flow.ygtc'
            ? { path: f.path, bytes: new TextEncoder().encode(replyFlow('hello', 'EVIL')) }
            : f,
        ),
        good.manifestBytes,
      ),
    },
    {
      name: 'file added after signing (SBOM refreshed)',
      code: 'pack_manifest_file_unlisted',
      bytes: await repack(
        [...payload, { path: 'assets/extra.json', bytes: new TextEncoder().encode('{}') }],
        good.manifestBytes,
      ),
    },
    {
      name: 'path escape (../ entry)',
      code: 'pack_entry_path_traversal',
      bytes: rawZip([
        ...good.files.map((f) => ({ name: f.path, data: f.bytes })),
        { name: '../escape.txt', data: new TextEncoder().encode('out') },
      ]),
    },
    {
      name: 'missing component (a node calls a component the archive does not bundle)',
      code: 'pack_manifest_component_missing',
      bytes: (
        await assemblePackV1({
          manifest: noEcho,
          files: payload.filter((f) => f.path !== wasmPath),
          key: trusted,
        })
      ).bytes,
    },
    {
      name: 'oversize entry (deflated past the per-entry cap)',
      code: 'pack_entry_too_large',
      bytes: rawZip([
        ...good.files.map((f) => ({ name: f.path, data: f.bytes })),
        {
          name: 'assets/bomb.bin',
          data: new Uint8Array(DEFAULT_ARCHIVE_LIMITS.maxFileBytes + 1),
          deflate: true,
        },
      ]),
    },
    {
      name: 'symbol index out of range',
      code: 'pack_manifest_symbol_invalid',
      bytes: await repack(payload, encodeWire(wire)),
    },
    {
      name: 'bad signature (manifest changed after signing)',
      code: 'pack_signature_invalid',
      bytes: await repack(payload, encodeManifestV1({ ...good.manifest, publisher: 'someone else' })),
    },
    {
      name: 'signature by an untrusted key',
      code: 'pack_signature_untrusted',
      bytes: (await assemblePackV1({ manifest: unsigned, files: payload, key: untrusted })).bytes,
    },
    {
      name: 'unsigned under the strict policy',
      code: 'pack_signature_missing',
      bytes: (await assemblePackV1({ manifest: unsigned, files: payload })).bytes,
    },
  ];
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-pack-v1-'));
  writePackDir(path.join(dir, 'src'), {
    id: REVERSE_DNS_ID,
    version: '1.2.3',
    flows: {
      'hello.ygtc': replyFlow('hello', 'v1'),
      'calc.ygtc': componentFlow('calc', 'echo', 'calc'),
    },
    components: { echo: await watComponent(3) },
    assets: { 'i18n/en.json': '{"hi":"Hello"}', 'cards/welcome.json': '{"type":"AdaptiveCard"}' },
  });
});

describe('pack-v1: byte-level round trip', () => {
  let built: PackV1Archive;

  beforeAll(async () => {
    built = await buildPackV1FromDir(path.join(dir, 'src'), { key: trusted });
  });

  it('re-reads to the same manifest, which re-encodes to the same bytes', async () => {
    const opened = await openAnyPack(built.bytes, {
      label: 'built',
      policy: strict,
      expectedId: REVERSE_DNS_ID,
    });
    expect(opened.format).toBe('pack-v1');
    if (opened.format !== 'pack-v1') return;
    const v = opened.pack;
    expect(v.signature.signer).toBe(keyFingerprint(trusted.publicKey));
    expect(v.warnings).toEqual([]);
    expect(withoutWire(v.manifest)).toEqual(built.manifest);
    const inArchive = v.files.get(MANIFEST_CBOR)!;
    expect(Buffer.from(inArchive).equals(Buffer.from(built.manifestBytes))).toBe(true);
    expect(Buffer.from(encodeManifestV1(v.manifest)).equals(Buffer.from(inArchive))).toBe(true);
    expect(
      Buffer.from(encodeManifestV1(decodeManifestV1(inArchive, 'again'))).equals(Buffer.from(inArchive)),
    ).toBe(true);
    // sbom.cbor is the canonical SBOM of every other file.
    const others = [...v.files].filter(([p]) => p !== SBOM_CBOR).map(([p, bytes]) => ({ path: p, bytes }));
    expect(Buffer.from(buildSbomV1(others)).equals(Buffer.from(v.files.get(SBOM_CBOR)!))).toBe(true);
  });

  it('is written in upstream wire form: declaration order, symbol indexes, no tag', () => {
    const bytes = built.manifestBytes;
    expect(bytes[0]).not.toBe(0xd9);
    const root = decodeWire(bytes) as WireMap;
    expect([...root.keys()].slice(0, 7)).toEqual([
      'schema_version',
      'pack_id',
      'version',
      'kind',
      'publisher',
      'symbols',
      'components',
    ]);
    expect(root.get('pack_id')).toBe(0);
    const symbols = root.get('symbols') as WireMap;
    expect(symbols.get('pack_ids')).toEqual([REVERSE_DNS_ID]);
    expect(symbols.get('node_ids')).toEqual(['answer', 'call']);
    const node = (
      ((root.get('flows') as WireMap[])[0]!.get('flow') as WireMap).get('nodes') as WireMap[]
    )[0]!;
    expect([...node.keys()]).toEqual([
      'id',
      'component',
      'input',
      'output',
      'err_map',
      'routing',
      'telemetry',
    ]);
    expect(typeof node.get('id')).toBe('number');
    expect(node.get('routing')).toEqual(new Map([['Next', new Map([['node_id', 0]])]]));
  });

  it('is deterministic: the same sources give the same bytes', async () => {
    const again = await buildPackV1FromDir(path.join(dir, 'src'), { key: trusted });
    expect(again.bytes.equals(built.bytes)).toBe(true);
  });

  it('yields flow-v1 flows, components by id, i18n assets and the default entrypoint to the registry', async () => {
    const opened = await openAnyPack(built.bytes, { label: 'built', policy: strict });
    if (opened.format !== 'pack-v1') throw new Error('not pack-v1');
    const c = contentsOfV1(opened.pack, 'sha256:x', 'built.gtpack');
    expect(c.id).toBe(REVERSE_DNS_ID);
    expect(c.format).toBe('pack-v1');
    expect(c.flowsV1!.map((f) => f.id).sort()).toEqual(['calc', 'hello']);
    const calc = c.flowsV1!.find((f) => f.id === 'calc')!.flow;
    expect(calc.nodes.map((n) => n.id)).toEqual(['call', 'answer']);
    expect(effectiveComponentId(calc.nodes[0]!)).toBe('echo');
    expect(calc.nodes[0]!.routing).toEqual({ kind: 'next', nodeId: 'answer' });
    expect(calc.nodes[1]!.routing).toEqual({ kind: 'end' });
    expect(c.components.map((x) => x.name)).toEqual(['echo']);
    expect([...c.i18n!.keys()]).toEqual(['assets/i18n/en.json']);
    expect(c.assets.has('assets/cards/welcome.json')).toBe(true);
    // The first entry flow is tagged `default`.
    expect(c.defaultEntrypoint).toEqual({ flow: 'hello', node: 'answer' });
    // The .ygtc sources ride along, pinned by the signed manifest, so today's flow path keeps working.
    expect(c.flows.map((f) => f.id).sort()).toEqual(['calc', 'hello']);
    // Sources the manifest does not pin (upstream `--dev` builds) are not used: the IR is what runs.
    const { 'greentic.runner.payload_digests@v1': _pins, ...rest } = built.manifest.extensions!;
    const unpinned = await assemblePackV1({
      manifest: { ...built.manifest, signatures: [], extensions: rest },
      files: payloadOf(built),
    });
    const u = await openAnyPack(unpinned.bytes, { label: 'unpinned', policy: dev });
    if (u.format !== 'pack-v1') throw new Error('not pack-v1');
    const uc = contentsOfV1(u.pack, 'sha256:y', 'unpinned.gtpack');
    expect(uc.flows).toEqual([]);
    expect(uc.flowsV1!.map((f) => f.id).sort()).toEqual(['calc', 'hello']);
  });

  it('a stale SBOM entry for manifest.cbor: refused under strict, loaded with a loud warning under dev', async () => {
    const unsigned = await buildPackV1FromDir(path.join(dir, 'src'));
    const edited = encodeManifestV1({ ...unsigned.manifest, publisher: 'repacked by hand' });
    const stale = await writeDeterministicZip(
      unsigned.files.map((f) => (f.path === MANIFEST_CBOR ? { path: f.path, bytes: edited } : f)),
    );
    // Longer than the SBOM says, like the upstream demo packs' manifests edited by hand.
    expect(await refusal(stale, trustPolicy('strict', []))).toBe('pack_sbom_size_mismatch');
    const opened = await openAnyPack(stale, { label: 'stale', policy: dev });
    expect(opened.format === 'pack-v1' && opened.pack.manifest.publisher).toBe('repacked by hand');
    expect(opened.format === 'pack-v1' && opened.pack.warnings.join('\n')).toMatch(
      /STALE SBOM.*manifest\.cbor/,
    );
    // Any other stale entry is refused under dev too.
    const wasm = unsigned.files.find((f) => f.path === 'components/echo.wasm')!;
    const changed = new Uint8Array(wasm.bytes);
    changed[10] = changed[10]! ^ 1;
    const badWasm = await writeDeterministicZip(
      unsigned.files.map((f) => (f === wasm ? { path: f.path, bytes: changed } : f)),
    );
    expect(await refusal(badWasm, dev)).toBe('pack_sbom_digest_mismatch');
  });

  it('a flow calling a component the archive lacks: refused under strict, left out with a warning under dev', async () => {
    const built = await buildPackV1FromDir(path.join(dir, 'src'));
    // Like greentic-demo's msg-event-app: a flow names a component that is neither bundled nor declared.
    const manifest: PackV1Manifest = {
      ...built.manifest,
      signatures: [],
      components: [],
      extensions: { 'greentic.pack-mode.v1': built.manifest.extensions!['greentic.pack-mode.v1']! },
    };
    const files = payloadOf(built).filter((f) => f.path !== 'components/echo.wasm');
    const signed = (await assemblePackV1({ manifest, files, key: trusted })).bytes;
    expect(await refusal(signed)).toBe('pack_manifest_component_missing');
    const opened = await openAnyPack((await assemblePackV1({ manifest, files })).bytes, {
      label: 'lacking',
      policy: dev,
    });
    if (opened.format !== 'pack-v1') throw new Error('expected a pack-v1 archive');
    // `calc` calls echo and is left out; `hello` needs no component and serves.
    expect(opened.pack.manifest.flows.map((f) => f.id).sort()).toEqual(['calc', 'hello']);
    expect(opened.pack.runnableFlows.map((f) => f.id)).toEqual(['hello']);
    expect(opened.pack.warnings.join('\n')).toMatch(
      /flow 'calc' node '[^']+' calls component 'echo', which the archive does not bundle: the flow is left out/,
    );
  });
});

async function cli(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('greentic-pack with pack-v1', () => {
  it('builds --format pack-v1 signed, verifies it against the trusted key, inspects flows and nodes', async () => {
    const keyFile = path.join(dir, 'cli.key');
    const pubFile = path.join(dir, 'cli.pub');
    writeFileSync(keyFile, secretKeyToPem(trusted));
    writeFileSync(pubFile, publicKeyToPem(trusted.publicKey));
    const out = path.join(dir, 'cli.gtpack');
    const b = await cli('build', path.join(dir, 'src'), '-o', out, '--format', 'pack-v1', '--key', keyFile);
    expect(b.code, b.err).toBe(0);
    expect(b.out).toMatch(
      new RegExp(`built .*\\(pack-v1\\): ${REVERSE_DNS_ID}@1\\.2\\.3, 2 flow\\(s\\), 1 component`),
    );
    const ok = await cli('verify', out, '--trust', pubFile, '--json');
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({
      ok: true,
      format: 'pack-v1',
      pack: REVERSE_DNS_ID,
      signer: keyFingerprint(trusted.publicKey),
    });
    expect((await cli('verify', out)).code).toBe(1);
    const ins = await cli('inspect', out);
    expect(ins.code).toBe(0);
    expect(ins.out).toMatch(/entrypoint {2}hello → answer/);
    expect(ins.out).toMatch(/flow calc\n.*\n {2}call +echo +execute +next → answer/);
    const json = JSON.parse((await cli('inspect', out, '--json')).out) as {
      format: string;
      components: { id: string }[];
    };
    expect(json.format).toBe('pack-v1');
    expect(json.components.map((c) => c.id)).toEqual(['echo']);
  });
});

describe('the older layout (meta/flows/components, sbom.json)', () => {
  it('is read with the self-describe tag 55799 and declaration-order keys', async () => {
    const legacy = await buildPackFromDir(path.join(dir, 'src'));
    // serde_cbor's form: tag 55799, then the struct fields in declaration order (not canonical).
    const tagged = encodeWire(jsonToWire(legacy.manifest, true), { selfDescribe: true });
    expect([...tagged.slice(0, 3)]).toEqual([0xd9, 0xd9, 0xf7]);
    expect(() => decodeCanonical(tagged)).toThrow();
    const payload = legacy.files.filter((f) => ![MANIFEST_CBOR, MANIFEST_JSON, SBOM_JSON].includes(f.path));
    const all = [
      ...payload,
      { path: MANIFEST_CBOR, bytes: tagged },
      { path: MANIFEST_JSON, bytes: new TextEncoder().encode(JSON.stringify(legacy.manifest)) },
    ];
    const zip = await writeDeterministicZip([...all, { path: SBOM_JSON, bytes: buildSbom(all).bytes }]);
    const opened = await openAnyPack(zip, { label: 'legacy', policy: dev, expectedId: REVERSE_DNS_ID });
    expect(opened.format).toBe('legacy');
    expect(opened.format === 'legacy' && opened.pack.manifest).toEqual(legacy.manifest);
  });
});

describe('hostile pack-v1 archives: refused by the reader with their codes', () => {
  let cases: V1Case[];

  beforeAll(async () => {
    cases = await hostileV1(await buildPackV1FromDir(path.join(dir, 'src'), { key: trusted }));
  });

  it('the good signed archive is accepted under strict', async () => {
    const good = await buildPackV1FromDir(path.join(dir, 'src'), { key: trusted });
    expect(await refusal(good.bytes)).toBe('accepted');
  });

  it('every variant is refused with its own code', async () => {
    const got = await Promise.all(cases.map(async (c) => [c.name, await refusal(c.bytes)]));
    expect(got).toEqual(cases.map((c) => [c.name, c.code]));
  });
});

describe('pack-v1 in the running runner: hostile reloads refused, the good version keeps serving', () => {
  let app: RunnerApp;
  let base: string;
  let packFile: string;
  let cases: V1Case[];
  const route = '/webhooks/webhook/acme/dev/default/web';

  const publish = (bytes: Uint8Array): void => {
    writeFileSync(`${packFile}.tmp`, bytes);
    renameSync(`${packFile}.tmp`, packFile);
  };

  beforeAll(async () => {
    const rdir = path.join(dir, 'runner');
    writeFileSync(path.join(dir, 'trusted.pub'), publicKeyToPem(trusted.publicKey));
    writePackDir(path.join(rdir, 'src'), {
      id: 'hello-v1',
      version: '1.0.0',
      flows: {
        'hello.ygtc': replyFlow('hello', 'good v1'),
        'calc.ygtc': componentFlow('calc', 'echo', 'calc'),
      },
      components: { echo: await watComponent(5) },
    });
    packFile = path.join(rdir, 'hello.gtpack');
    const good = await buildPackV1FromDir(path.join(rdir, 'src'), { key: trusted });
    publish(good.bytes);
    cases = await hostileV1(good);
    const bundle = writeBundle(path.join(rdir, 'bundle.yaml'), {
      policy: 'strict',
      keys: ['../trusted.pub'],
      packs: [{ id: 'hello-v1', source: 'file:./hello.gtpack' }],
      channels: { web: { pack: 'hello-v1', flow: 'hello' } },
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
    base = s.url;
  });

  afterAll(async () => {
    await app?.close();
  });

  it('serves the good signed pack-v1 archive under the strict policy', async () => {
    const r = await sendMessage(base, route, { userId: 'u0', text: 'hi' });
    expect(r.texts).toEqual(['good v1: hi']);
    const st = (await (await fetch(`${base}/admin/packs/status`)).json()) as {
      packs: { version: string; signer: string }[];
    };
    expect(st.packs[0]).toMatchObject({ version: '1.0.0', signer: keyFingerprint(trusted.publicKey) });
  });

  it('refuses each hostile variant on reload with its code, and keeps answering', async () => {
    for (const c of cases) {
      publish(c.bytes);
      const res = await fetch(`${base}/admin/packs/reload`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ pack: 'hello-v1' }),
      });
      expect(res.status, c.name).toBe(422);
      const body = (await res.json()) as {
        results: { outcome: string; version: string; error: { code: string } }[];
      };
      expect(body.results[0], c.name).toMatchObject({
        outcome: 'failed',
        version: '1.0.0',
        error: { code: c.code },
      });
      const r = await sendMessage(base, route, { userId: `u-${c.code}`, text: 'still?' });
      expect(r.texts, c.name).toEqual(['good v1: still?']);
    }
  });
});
