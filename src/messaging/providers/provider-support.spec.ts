import { describe, expect, it } from 'vitest';
import { BadRequestError, PayloadTooDeepError, PayloadTooManyKeysError } from '../../common/errors.js';
import { retryHints } from '../egress-dispatcher.service.js';
import { EgressError } from './messaging-provider.js';
import {
  hexSignatureMatches,
  hmacSha256,
  normalizeCard,
  parseJsonObject,
  parseRetryAfter,
  safeEqual,
} from './provider-support.js';

describe('provider support', () => {
  it('parses a JSON object within the given limits (64 levels, 10,000 keys by default)', () => {
    const body = '{"a":[{"b":1}]}';
    expect(parseJsonObject(Buffer.from(body), 'x', { maxJsonDepth: 3, maxJsonKeys: 2 })).toEqual({
      a: [{ b: 1 }],
    });
    expect(() => parseJsonObject(body, 'x', { maxJsonDepth: 2, maxJsonKeys: 2 })).toThrow(
      PayloadTooDeepError,
    );
    expect(() => parseJsonObject(body, 'x', { maxJsonDepth: 3, maxJsonKeys: 1 })).toThrow(
      PayloadTooManyKeysError,
    );
    expect(() => parseJsonObject(`{"a":${'['.repeat(65)}${']'.repeat(65)}}`, 'x')).toThrow(
      PayloadTooDeepError,
    );
    expect(() => parseJsonObject('{"a":', 'x')).toThrow(BadRequestError);
    expect(() => parseJsonObject('{"a":', 'x')).toThrow(/^x: malformed JSON body/);
    expect(() => parseJsonObject('[1]', 'x')).toThrow('x: body must be a JSON object');
  });

  it('compares secrets of any length in constant time', () => {
    expect(safeEqual('abc', 'abc')).toBe(true);
    expect(safeEqual('abc', 'abcd')).toBe(false);
    expect(safeEqual(Buffer.from('x'), 'x')).toBe(true);
  });

  it('matches a hex signature against a digest only in the exact format', () => {
    const d = hmacSha256('k', 'body');
    const hex = d.toString('hex');
    expect(hexSignatureMatches(d, `sha256=${hex}`, 'sha256=')).toBe(true);
    expect(hexSignatureMatches(d, `sha256=${hex.toUpperCase()}`, 'sha256=')).toBe(true);
    expect(
      hexSignatureMatches(
        d,
        `sha256=${hex.slice(0, -1)}0`.replace(/.$/, hex.endsWith('0') ? '1' : '0'),
        'sha256=',
      ),
    ).toBe(false);
    expect(hexSignatureMatches(d, `sha1=${hex}`, 'sha256=')).toBe(false);
    expect(hexSignatureMatches(d, `sha256=${hex}00`, 'sha256=')).toBe(false);
    expect(hexSignatureMatches(d, `sha256=${'z'.repeat(64)}`, 'sha256=')).toBe(false);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter(null)).toBeUndefined();
    const inTwo = new Date(Date.now() + 2000).toUTCString();
    expect(parseRetryAfter(inTwo)).toBeGreaterThan(0);
  });

  it('gives the dispatcher retry hints: 4xx never, 429 after Retry-After, unknown errors yes', () => {
    expect(retryHints(new EgressError('x', '400', false))).toEqual({ retryable: false });
    expect(retryHints(new EgressError('x', '429', true, 1500))).toEqual({
      retryable: true,
      retryAfterMs: 1500,
    });
    expect(retryHints(new Error('socket hang up'))).toEqual({ retryable: true });
  });

  it('normalises flow cards', () => {
    expect(
      normalizeCard({ title: 'T', body: 'B', image_url: 'u', actions: [{ label: 'L', data: 'd' }, 'S'] }),
    ).toEqual({
      title: 'T',
      text: 'B',
      imageUrl: 'u',
      buttons: [
        { title: 'L', value: 'd' },
        { title: 'S', value: 'S' },
      ],
    });
  });
});
