import { X509Certificate } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { PackError } from '../../common/errors.js';
import {
  CHAIN_PATH,
  DEFAULT_ARCHIVE_LIMITS,
  MANIFEST_CBOR,
  SBOM_JSON,
  SIGNATURE_PATH,
  type ArchiveLimits,
} from '../format/constants.js';
import { keyFingerprint, parsePublicKey, verify } from '../format/keys.js';
import { checkManifestAgainstFiles, decodeManifest, type PackManifest } from '../format/manifest.js';
import { checkSbom, parseSbom, type SbomEntry } from '../format/sbom.js';
import { parseEnvelope, signatureDigest, type ParsedEnvelope } from '../format/signature.js';
import { readArchive } from '../format/zip-reader.js';
import type { TrustPolicy } from './trust.js';

export interface SignatureCheck {
  /** Fingerprint of the trusted key that verified the signature. */
  signer?: string;
  envelope?: ParsedEnvelope;
  warnings: string[];
}

export interface VerifiedPack {
  manifest: PackManifest;
  files: Map<string, Uint8Array>;
  sbom: SbomEntry[];
  signature: SignatureCheck;
}

export interface OpenPackOptions {
  /** Shown in every error: the file, URL or OCI reference. */
  label: string;
  policy: TrustPolicy;
  limits?: ArchiveLimits;
  /** The pack id the bundle expects. */
  expectedId?: string;
}

function chainKey(pem: Uint8Array, label: string): Uint8Array {
  try {
    const cert = new X509Certificate(Buffer.from(pem));
    const spki = cert.publicKey.export({ type: 'spki', format: 'pem' }) as string;
    return parsePublicKey(spki, `${label}: ${CHAIN_PATH}`);
  } catch (e) {
    throw new PackError(
      'pack_signature_malformed',
      `${label}: ${CHAIN_PATH} is not a readable Ed25519 certificate: ${(e as Error).message}`,
    );
  }
}

/**
 * Checks `signatures/pack.sig` against the pack and the trust policy. Tampering (a digest that is
 * not this pack's, a signature that does not verify) is refused under every policy; only a
 * missing signature or an unknown key is let through under `dev`, with a warning.
 */
export function verifyPackSignature(
  files: ReadonlyMap<string, Uint8Array>,
  entries: readonly SbomEntry[],
  policy: TrustPolicy,
  label: string,
): SignatureCheck {
  const warnings: string[] = [];
  const sigBytes = files.get(SIGNATURE_PATH);
  if (!sigBytes) {
    if (policy.mode === 'strict') {
      throw new PackError(
        'pack_signature_missing',
        `${label}: the pack is unsigned and the trust policy is strict`,
      );
    }
    warnings.push('pack is unsigned (allowed by the dev trust policy)');
    return { warnings };
  }
  const env = parseEnvelope(sigBytes, label);
  const digest = signatureDigest(files.get(MANIFEST_CBOR)!, files.get(SBOM_JSON)!, entries);
  if (bytesToHex(digest) !== env.digest) {
    throw new PackError(
      'pack_signature_digest_mismatch',
      `${label}: the signature was made over other content (its digest ${env.digest} is not this pack's ${bytesToHex(digest)})`,
    );
  }
  const chain = files.get(CHAIN_PATH);
  const chainPub = chain ? chainKey(chain, label) : undefined;
  if (chainPub && env.key_fingerprint && keyFingerprint(chainPub) !== env.key_fingerprint) {
    throw new PackError(
      'pack_signature_chain_mismatch',
      `${label}: ${CHAIN_PATH} holds a different key than the signature names`,
    );
  }
  const candidates = env.key_fingerprint
    ? [policy.keys.get(env.key_fingerprint)].filter((k) => k !== undefined)
    : [...policy.keys.values()];
  for (const k of candidates) {
    if (verify(env.signature, digest, k.publicKey)) return { signer: k.fingerprint, envelope: env, warnings };
  }
  if (env.key_fingerprint && candidates.length > 0) {
    throw new PackError(
      'pack_signature_invalid',
      `${label}: the signature does not verify with trusted key ${env.key_fingerprint}`,
    );
  }
  const who = env.key_fingerprint ? `key ${env.key_fingerprint}` : 'a key that names no fingerprint';
  if (policy.mode === 'strict') {
    throw new PackError(
      'pack_signature_untrusted',
      `${label}: signed by ${who}, which is not a trusted key`,
      {
        fingerprint: env.key_fingerprint,
      },
    );
  }
  if (chainPub) {
    if (!verify(env.signature, digest, chainPub)) {
      throw new PackError(
        'pack_signature_invalid',
        `${label}: the signature does not verify with the key of ${CHAIN_PATH}`,
      );
    }
    warnings.push(`signed by untrusted ${who} (signature valid; allowed by the dev trust policy)`);
  } else {
    warnings.push(`signed by untrusted ${who} (not checked; allowed by the dev trust policy)`);
  }
  return { envelope: env, warnings };
}

/**
 * The whole verification, in the order that keeps hostile input away from every parser that
 * matters: archive structure and limits → SBOM (every file, both ways) → signature → manifest.
 * Only what comes out of here may be transpiled or loaded.
 */
export async function openPack(bytes: Uint8Array, opts: OpenPackOptions): Promise<VerifiedPack> {
  return verifyLegacyFiles(await readArchive(bytes, opts.label, opts.limits ?? DEFAULT_ARCHIVE_LIMITS), opts);
}

/** The older (`meta`) layout's checks on an archive `readArchive` has already opened. */
export function verifyLegacyFiles(files: Map<string, Uint8Array>, opts: OpenPackOptions): VerifiedPack {
  const { label } = opts;
  const sbomBytes = files.get(SBOM_JSON);
  if (!sbomBytes) throw new PackError('pack_sbom_missing', `${label}: the archive has no sbom.json`);
  const sbom = parseSbom(sbomBytes, label);
  checkSbom(files, sbom, label);
  if (!files.has(MANIFEST_CBOR))
    throw new PackError('pack_manifest_missing', `${label}: the archive has no manifest.cbor`);
  const signature = verifyPackSignature(files, sbom, opts.policy, label);
  const manifest = decodeManifest(files.get(MANIFEST_CBOR)!, label);
  checkManifestAgainstFiles(manifest, files, label, new Map(sbom.map((e) => [e.path, e.hash_blake3])));
  if (opts.expectedId !== undefined && manifest.meta.pack_id !== opts.expectedId) {
    throw new PackError(
      'pack_id_mismatch',
      `${label}: pack id '${manifest.meta.pack_id}' does not match the bundle's pack '${opts.expectedId}'`,
    );
  }
  return { manifest, files, sbom, signature };
}
