import { X509Certificate, createPublicKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { selfSignedCertificatePem } from './certificate.js';
import { generateKeyPair, keyFingerprint, publicKeyToPem } from './keys.js';

describe('chain.pem certificate', () => {
  it('is a self-signed X.509 certificate of the signing key, deterministic for key and time', () => {
    const kp = generateKeyPair();
    const at = new Date('2026-01-02T03:04:05Z');
    const pem = selfSignedCertificatePem(kp, at);
    expect(selfSignedCertificatePem(kp, at)).toBe(pem);
    const cert = new X509Certificate(pem);
    expect(cert.subject).toBe(`CN=greentic-pack signer ${keyFingerprint(kp.publicKey).slice(0, 16)}`);
    expect(cert.issuer).toBe(cert.subject);
    expect(new Date(cert.validFrom).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(cert.publicKey.export({ type: 'spki', format: 'pem' })).toBe(publicKeyToPem(kp.publicKey));
    expect(cert.verify(createPublicKey(publicKeyToPem(kp.publicKey)))).toBe(true);
  });
});
