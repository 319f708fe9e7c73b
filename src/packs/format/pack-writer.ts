import { PackError } from '../../common/errors.js';
import {
  CHAIN_PATH,
  MANIFEST_CBOR,
  MANIFEST_JSON,
  SBOM_JSON,
  SIGNATURE_PATH,
  type ArchiveLimits,
} from './constants.js';
import { selfSignedCertificatePem } from './certificate.js';
import type { Ed25519KeyPair } from './keys.js';
import { encodeManifest, type PackManifest } from './manifest.js';
import { buildSbom, checkSbom, parseSbom } from './sbom.js';
import { createEnvelope, encodeEnvelope, signatureDigest } from './signature.js';
import { readArchive } from './zip-reader.js';
import { writeDeterministicZip, type PackFile } from './zip-writer.js';

export interface AssembleInput {
  manifest: PackManifest;
  /** Payload files (flows, components, assets); the manifest, SBOM and signature are added here. */
  files: readonly PackFile[];
  key?: Ed25519KeyPair;
  /** RFC 3339; defaults to now. Fix it (SOURCE_DATE_EPOCH) for byte-identical signed builds. */
  signedAt?: string;
}

export interface AssembledPack {
  bytes: Buffer;
  files: PackFile[];
}

/** `signatures/chain.pem`: a self-signed certificate of the signing key (readers of the public format expect one). */
function chainFile(key: Ed25519KeyPair, signedAt: string): PackFile {
  const t = new Date(signedAt);
  return {
    path: CHAIN_PATH,
    bytes: new TextEncoder().encode(
      selfSignedCertificatePem(key, Number.isNaN(t.getTime()) ? new Date(0) : t),
    ),
  };
}

/** Manifest → SBOM → signature → deterministic ZIP. */
export async function assemblePack(input: AssembleInput): Promise<AssembledPack> {
  const { cbor, json } = encodeManifest(input.manifest);
  const payload: PackFile[] = [
    ...input.files,
    { path: MANIFEST_CBOR, bytes: cbor },
    { path: MANIFEST_JSON, bytes: json },
  ];
  const sbom = buildSbom(payload);
  const files: PackFile[] = [...payload, { path: SBOM_JSON, bytes: sbom.bytes }];
  if (input.key) {
    const digest = signatureDigest(cbor, sbom.bytes, sbom.entries);
    const env = createEnvelope(digest, input.key, input.signedAt ?? new Date().toISOString());
    files.push({ path: SIGNATURE_PATH, bytes: encodeEnvelope(env) }, chainFile(input.key, env.signed_at_utc));
  }
  return { bytes: await writeDeterministicZip(files), files };
}

/**
 * Signs (or re-signs) an existing pack. The archive is checked against its own SBOM first, so a
 * pack altered after it was built is never blessed by a signature.
 */
export async function signPack(
  archive: Uint8Array,
  key: Ed25519KeyPair,
  opts: { label: string; signedAt?: string; limits?: ArchiveLimits },
): Promise<Buffer> {
  const files = await readArchive(archive, opts.label, opts.limits);
  const sbomBytes = files.get(SBOM_JSON);
  if (!sbomBytes) throw new PackError('pack_sbom_missing', `${opts.label}: no sbom.json`);
  const entries = parseSbom(sbomBytes, opts.label);
  checkSbom(files, entries, opts.label);
  const manifest = files.get(MANIFEST_CBOR);
  if (!manifest) throw new PackError('pack_manifest_missing', `${opts.label}: no manifest.cbor`);
  const env = createEnvelope(
    signatureDigest(manifest, sbomBytes, entries),
    key,
    opts.signedAt ?? new Date().toISOString(),
  );
  const out: PackFile[] = [];
  for (const [path, bytes] of files)
    if (path !== SIGNATURE_PATH && path !== CHAIN_PATH) out.push({ path, bytes });
  out.push({ path: SIGNATURE_PATH, bytes: encodeEnvelope(env) }, chainFile(key, env.signed_at_utc));
  return writeDeterministicZip(out);
}
