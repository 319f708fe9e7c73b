import { describe, expect, it } from 'vitest';
import { SecretRedactor } from './secret-redactor.js';

describe('SecretRedactor', () => {
  it('masks registered values, including their JSON-escaped form', () => {
    const r = new SecretRedactor();
    r.register('pa"ss\\word-1');
    r.register('tok-123456');
    const line = JSON.stringify({ msg: 'using pa"ss\\word-1 and tok-123456' });
    expect(r.redact(line)).toBe(
      JSON.stringify({ msg: 'using [redacted] and [redacted]' }).replace(/\\"/g, '\\"'),
    );
    expect(r.redact('plain tok-123456!')).toBe('plain [redacted]!');
  });

  it('masks the longer of two overlapping values whole', () => {
    const r = new SecretRedactor();
    r.register('abcd');
    r.register('abcdefgh');
    expect(r.redact('x abcdefgh y abcd')).toBe('x [redacted] y [redacted]');
  });

  it('ignores values shorter than the minimum and treats regex characters literally', () => {
    const r = new SecretRedactor();
    r.register('abc');
    r.register('a.*b+');
    expect(r.redact('abc aXXb a.*b+')).toBe('abc aXXb [redacted]');
  });

  it('drops the oldest values beyond its cap', () => {
    const r = new SecretRedactor(2);
    r.register('first-value');
    r.register('second-value');
    r.register('third-value');
    expect(r.contains('first-value')).toBe(false);
    expect(r.contains('third-value')).toBe(true);
  });

  it('redacts deep values', () => {
    const r = new SecretRedactor();
    r.register('deep-secret');
    expect(r.redactValue({ a: [{ b: 'x deep-secret' }] })).toEqual({ a: [{ b: 'x [redacted]' }] });
  });
});
