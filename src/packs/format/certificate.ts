import { sign, keyFingerprint, type Ed25519KeyPair } from './keys.js';

/**
 * A self-signed X.509 certificate for an ed25519 signing key, for `signatures/chain.pem`: the
 * public format's reader takes the signer's key from that chain. Minimal DER by hand (Node can
 * parse certificates but not make them); deterministic for a given key and time, so signed builds
 * stay reproducible. The runner trusts keys, not this certificate: it only checks the
 * certificate's key is the signature's.
 */
function der(tag: number, ...parts: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}

const seq = (...p: Uint8Array[]): Uint8Array => der(0x30, ...p);
const ED25519 = seq(der(0x06, Buffer.from([0x2b, 0x65, 0x70])));

function time(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z';
  // RFC 5280: UTCTime through 2049, GeneralizedTime after.
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2))) : der(0x18, Buffer.from(iso));
}

function name(cn: string): Uint8Array {
  return seq(der(0x31, seq(der(0x06, Buffer.from([0x55, 0x04, 0x03])), der(0x0c, Buffer.from(cn, 'utf8')))));
}

export function selfSignedCertificatePem(key: Ed25519KeyPair, notBefore: Date): string {
  const fp = keyFingerprint(key.publicKey);
  const serial = Buffer.from(fp.slice(0, 32), 'hex');
  serial[0] = serial[0]! & 0x7f; // a positive INTEGER
  const subject = name(`greentic-pack signer ${fp.slice(0, 16)}`);
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))),
    der(0x02, serial),
    ED25519,
    subject,
    seq(time(notBefore), der(0x18, Buffer.from('99991231235959Z'))),
    subject,
    seq(ED25519, der(0x03, Buffer.from([0]), key.publicKey)),
  );
  const cert = seq(tbs, ED25519, der(0x03, Buffer.from([0]), sign(tbs, key.secretKey)));
  const b64 = Buffer.from(cert)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trimEnd();
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}
