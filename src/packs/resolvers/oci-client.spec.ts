import { describe, expect, it } from 'vitest';
import { parseOciRef } from './oci-client.js';

describe('parseOciRef', () => {
  it('reads registry, repository, tag and digest; loopback is plain HTTP', () => {
    expect(parseOciRef('oci:127.0.0.1:5000/greentic/demo:1.0.0')).toEqual({
      registry: '127.0.0.1:5000',
      repository: 'greentic/demo',
      tag: '1.0.0',
      digest: undefined,
      baseUrl: 'http://127.0.0.1:5000',
    });
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseOciRef(`oci://ghcr.io/acme/packs/demo@${d}`)).toMatchObject({
      registry: 'ghcr.io',
      repository: 'acme/packs/demo',
      tag: undefined,
      digest: d,
      baseUrl: 'https://ghcr.io',
    });
    expect(parseOciRef('oci:localhost:5000/demo')).toMatchObject({
      tag: 'latest',
      baseUrl: 'http://localhost:5000',
    });
  });

  it('refuses malformed references with a clear error', () => {
    expect(() => parseOciRef('oci:demo')).toThrow(/expected oci:<registry>\/<repository>/);
    expect(() => parseOciRef('oci:r.io/Demo:1')).toThrow(/not a valid OCI name/);
    expect(() => parseOciRef('oci:r.io/demo@sha256:zz')).toThrow(/digest must be sha256/);
  });
});
