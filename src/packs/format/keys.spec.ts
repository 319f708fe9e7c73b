import { describe, expect, it } from 'vitest';
import {
  generateKeyPair,
  keyFingerprint,
  keyToJwk,
  parsePublicKey,
  parseSecretKey,
  publicKeyToPem,
  secretKeyToPem,
  sign,
  verify,
} from './keys.js';

describe('ed25519 keys', () => {
  it('round-trips PEM and JWK, and signs', () => {
    const kp = generateKeyPair();
    const fromPem = parseSecretKey(secretKeyToPem(kp), 'k');
    expect(Buffer.from(fromPem.publicKey).equals(Buffer.from(kp.publicKey))).toBe(true);
    expect(
      Buffer.from(parsePublicKey(publicKeyToPem(kp.publicKey), 'p')).equals(Buffer.from(kp.publicKey)),
    ).toBe(true);
    const jwk = JSON.stringify(keyToJwk({ publicKey: kp.publicKey }));
    expect(keyFingerprint(parsePublicKey(jwk, 'j'))).toBe(keyFingerprint(kp.publicKey));
    const inline = `ed25519:${Buffer.from(kp.publicKey).toString('base64url')}`;
    expect(keyFingerprint(parsePublicKey(inline, 'i'))).toBe(keyFingerprint(kp.publicKey));
    const msg = new TextEncoder().encode('digest');
    expect(verify(sign(msg, fromPem.secretKey), msg, kp.publicKey)).toBe(true);
    expect(verify(sign(msg, generateKeyPair().secretKey), msg, kp.publicKey)).toBe(false);
  });

  it('never takes a private key as a trusted key', () => {
    const kp = generateKeyPair();
    expect(() => parsePublicKey(secretKeyToPem(kp), 'trust.keys[0]')).toThrow(/never trust a private key/);
    expect(() => parsePublicKey(JSON.stringify(keyToJwk(kp)), 'trust.keys[0]')).toThrow(
      /holds a private key/,
    );
    expect(() => parsePublicKey('hello', 'trust.keys[0]')).toThrow(/trust\.keys\[0\]: not a public key/);
  });
});
