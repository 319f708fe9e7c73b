import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PackError } from '../../common/errors.js';
import { hostilePacks, type HostileCase } from '../../../test/fixtures/packs/hostile-packs.js';
import { rawZip, replyFlow, watComponent, writePackDir } from '../../../test/fixtures/packs/pack-fixtures.js';
import { generateKeyPair, keyFingerprint, type Ed25519KeyPair } from '../format/keys.js';
import { buildPackFromDir } from '../format/pack-builder.js';
import { signPack } from '../format/pack-writer.js';
import { openPack } from './pack-verifier.js';
import { trustPolicy, type TrustPolicy } from './trust.js';

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let trusted: Ed25519KeyPair;
let untrusted: Ed25519KeyPair;
let strict: TrustPolicy;
let dir: string;
let cases: HostileCase[];

async function refusal(p: Promise<unknown>): Promise<PackError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PackError || (e as { code?: string }).code) return e as PackError;
    throw e;
  }
  throw new Error('expected the pack to be refused');
}

beforeAll(async () => {
  trusted = generateKeyPair();
  untrusted = generateKeyPair();
  strict = trustPolicy('strict', [
    { fingerprint: keyFingerprint(trusted.publicKey), publicKey: trusted.publicKey, source: 'test' },
  ]);
  dir = mkdtempSync(path.join(os.tmpdir(), 'greentic-pack-spec-'));
  writePackDir(path.join(dir, 'p'), {
    id: 'hello',
    version: '1.2.3',
    flows: { 'hello.ygtc': replyFlow('hello', 'v1') },
    components: { echo: await watComponent(1) },
    assets: { 'readme.txt': 'hi' },
  });
  cases = await hostilePacks({ id: 'hello', trusted, untrusted, bombBytes: 40 * 1024 * 1024 });
});

describe('pack format', () => {
  it('builds byte-identical packs from the same inputs, signed or not', async () => {
    const a = await buildPackFromDir(path.join(dir, 'p'));
    const b = await buildPackFromDir(path.join(dir, 'p'));
    expect(sha256(a.bytes)).toBe(sha256(b.bytes));
    const sa = await buildPackFromDir(path.join(dir, 'p'), {
      key: trusted,
      signedAt: '2026-01-01T00:00:00Z',
    });
    const sb = await buildPackFromDir(path.join(dir, 'p'), {
      key: trusted,
      signedAt: '2026-01-01T00:00:00Z',
    });
    expect(sha256(sa.bytes)).toBe(sha256(sb.bytes));
    // Entries in lexical order, stored, with the fixed layout of the format.
    expect(sa.files.map((f) => f.path).sort()).toEqual([
      'assets/readme.txt',
      'components/echo@0.1.0/component.wasm',
      'flows/hello/flow.json',
      'flows/hello/flow.ygtc',
      'manifest.cbor',
      'manifest.json',
      'sbom.json',
      'signatures/chain.pem',
      'signatures/pack.sig',
    ]);
  });

  it('verifies a signed pack and returns its manifest, signer and files', async () => {
    const built = await buildPackFromDir(path.join(dir, 'p'), { key: trusted });
    const v = await openPack(built.bytes, { label: 'hello.gtpack', policy: strict, expectedId: 'hello' });
    expect(v.signature.signer).toBe(keyFingerprint(trusted.publicKey));
    expect(v.manifest.meta).toMatchObject({ pack_id: 'hello', version: '1.2.3', entry_flows: ['hello'] });
    expect(v.manifest.components.map((c) => c.name)).toEqual(['echo']);
    expect(v.sbom.map((e) => e.path)).toContain('components/echo@0.1.0/component.wasm');
  });

  it('signs an unsigned pack afterwards, and the result verifies', async () => {
    const unsigned = await buildPackFromDir(path.join(dir, 'p'));
    await expect(openPack(unsigned.bytes, { label: 'x', policy: strict })).rejects.toMatchObject({
      code: 'pack_signature_missing',
    });
    const signed = await signPack(unsigned.bytes, trusted, { label: 'x' });
    const v = await openPack(signed, { label: 'x', policy: strict });
    expect(v.signature.signer).toBe(keyFingerprint(trusted.publicKey));
  });

  it('dev policy loads unsigned and unknown-key packs with a warning, never tampered ones', async () => {
    const dev = trustPolicy('dev', [...strict.keys.values()]);
    const unsigned = await buildPackFromDir(path.join(dir, 'p'));
    expect((await openPack(unsigned.bytes, { label: 'x', policy: dev })).signature.warnings).toEqual([
      'pack is unsigned (allowed by the dev trust policy)',
    ]);
    const other = await buildPackFromDir(path.join(dir, 'p'), { key: untrusted });
    const w = (await openPack(other.bytes, { label: 'x', policy: dev })).signature.warnings;
    expect(w[0]).toMatch(/^signed by untrusted key [0-9a-f]{64}/);
    const tampered = cases.find((c) => c.code === 'pack_sbom_digest_mismatch')!;
    await expect(openPack(tampered.bytes, { label: 'x', policy: dev })).rejects.toMatchObject({
      code: 'pack_sbom_digest_mismatch',
    });
  });

  it('refuses an entry whose local header names another file than the central directory', async () => {
    const z = rawZip([
      { name: 'assets/a.txt', localName: 'assets/b.txt', data: new TextEncoder().encode('x') },
    ]);
    expect((await refusal(openPack(z, { label: 'two-names', policy: strict }))).code).toBe(
      'pack_entry_header_mismatch',
    );
  });

  it('refuses a lying header that inflates past its declared size, and a total past the cap', async () => {
    const liar = rawZip([
      { name: 'a.bin', data: new Uint8Array(1024 * 1024), deflate: true, declaredSize: 100 },
    ]);
    expect((await refusal(openPack(liar, { label: 'liar', policy: strict }))).code).toBe(
      'pack_entry_too_large',
    );
    const many = rawZip(
      Array.from({ length: 5 }, (_, i) => ({
        name: `b${i}.bin`,
        data: new Uint8Array(1024 * 1024),
        deflate: true,
      })),
    );
    const err = await refusal(
      openPack(many, {
        label: 'many',
        policy: strict,
        limits: {
          maxArchiveBytes: 1e9,
          maxEntries: 100,
          maxFileBytes: 2 * 1024 * 1024,
          maxTotalBytes: 4 * 1024 * 1024,
        },
      }),
    );
    expect(err.code).toBe('pack_total_too_large');
  });
});

describe('signature edge cases', () => {
  it('refuses a signature that names a trusted key but was made by another, and a chain.pem of another key', async () => {
    const { CHAIN_PATH, SIGNATURE_PATH } = await import('../format/constants.js');
    const { parseEnvelope, encodeEnvelope } = await import('../format/signature.js');
    const { selfSignedCertificatePem } = await import('../format/certificate.js');
    const good = await buildPackFromDir(path.join(dir, 'p'), { key: trusted });
    const forged = await buildPackFromDir(path.join(dir, 'p'), { key: untrusted });
    const env = parseEnvelope(forged.files.find((f) => f.path === SIGNATURE_PATH)!.bytes, 'x');
    const { signature: _sig, ...plain } = env;
    const claimed = encodeEnvelope({ ...plain, key_fingerprint: keyFingerprint(trusted.publicKey) });
    const files = good.files
      .filter((f) => f.path !== CHAIN_PATH)
      .map((f) =>
        f.path === SIGNATURE_PATH ? { name: f.path, data: claimed } : { name: f.path, data: f.bytes },
      );
    expect((await refusal(openPack(rawZip(files), { label: 'forged', policy: strict }))).code).toBe(
      'pack_signature_invalid',
    );

    const otherChain = new TextEncoder().encode(selfSignedCertificatePem(untrusted, new Date()));
    const swapped = good.files.map((f) => ({
      name: f.path,
      data: f.path === CHAIN_PATH ? otherChain : f.bytes,
    }));
    expect((await refusal(openPack(rawZip(swapped), { label: 'chain', policy: strict }))).code).toBe(
      'pack_signature_chain_mismatch',
    );
  });
});

describe('hostile packs, refused by the verifier with their own error', () => {
  const expected = [
    'pack_entry_path_traversal',
    'pack_entry_path_absolute',
    'pack_entry_link',
    'pack_entry_duplicate',
    'pack_entry_too_large',
    'pack_archive_invalid',
    'pack_sbom_digest_mismatch',
    'pack_sbom_unlisted',
    'pack_sbom_file_missing',
    'pack_sbom_unlisted',
    'pack_signature_untrusted',
    'pack_signature_digest_mismatch',
    'pack_signature_malformed',
    'pack_manifest_invalid',
    'pack_manifest_flow_missing',
  ];
  it.each(expected.map((code, i) => [i, code] as const))('case %i: %s', async (i, code) => {
    const c = cases[i]!;
    expect(c.code).toBe(code);
    const err = await refusal(
      openPack(c.bytes, { label: 'hostile.gtpack', policy: strict, expectedId: 'hello' }),
    );
    expect(err.code).toBe(c.code);
    expect(err.message).toMatch(/^hostile\.gtpack: /);
    expect(err.message).toMatch(c.message);
  });

  it('a pack whose flow fails validation passes verification (the registry refuses it at load)', async () => {
    const c = cases.find((x) => x.code === 'flow_invalid')!;
    const v = await openPack(c.bytes, { label: 'x', policy: strict });
    expect(v.manifest.flows.map((f) => f.id)).toEqual(['hello']);
  });
});
