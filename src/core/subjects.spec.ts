import { describe, expect, it } from 'vitest';
import {
  deadLetterSubject,
  deadLetterSubjectOf,
  egressSubject,
  ingressSubject,
  isSubjectToken,
  parseSubject,
  subjectDirection,
  subjectPattern,
} from './subjects.js';

describe('messaging subjects', () => {
  it('builds one subject per direction and channel', () => {
    expect(ingressSubject('dev', 'acme', 'default', 'web')).toBe(
      'greentic.messaging.ingress.dev.acme.default.web',
    );
    expect(egressSubject('dev', 'acme', 'default', 'web')).toBe(
      'greentic.messaging.egress.dev.acme.default.web',
    );
    expect(deadLetterSubject('dev', 'acme', 'default', 'web')).toBe(
      'greentic.messaging.dlq.dev.acme.default.web',
    );
  });

  it('parses what it builds, and nothing else', () => {
    expect(parseSubject(egressSubject('prod', 'globex', 'ops', 'slack'))).toEqual({
      direction: 'egress',
      env: 'prod',
      tenant: 'globex',
      team: 'ops',
      channel: 'slack',
    });
    expect(parseSubject('greentic.messaging.ingress.dev.acme.default')).toBeNull();
    expect(parseSubject('greentic.messaging.other.dev.acme.default.web')).toBeNull();
    expect(parseSubject('greentic.messaging.ingress.dev.*.default.web')).toBeNull();
    expect(parseSubject('greentic.messaging.ingress.>')).toBeNull();
    expect(parseSubject('other.messaging.ingress.dev.acme.default.web')).toBeNull();
  });

  it('dead-letters ingress and egress subjects to their channel, and nothing else', () => {
    expect(deadLetterSubjectOf(ingressSubject('dev', 'acme', 'default', 'web'))).toBe(
      'greentic.messaging.dlq.dev.acme.default.web',
    );
    expect(deadLetterSubjectOf(egressSubject('dev', 'acme', 'default', 'web'))).toBe(
      'greentic.messaging.dlq.dev.acme.default.web',
    );
    expect(deadLetterSubjectOf(deadLetterSubject('dev', 'acme', 'default', 'web'))).toBeUndefined();
    expect(deadLetterSubjectOf('greentic.messaging.duplicate.dev.acme.default.web')).toBeUndefined();
    expect(deadLetterSubjectOf('orders.created')).toBeUndefined();
  });

  it('builds patterns: a whole direction, or some coordinates with wildcards for the rest', () => {
    expect(subjectPattern('egress')).toBe('greentic.messaging.egress.>');
    expect(subjectPattern('egress', { channel: 'slack' })).toBe('greentic.messaging.egress.*.*.*.slack');
    expect(subjectPattern('ingress', { tenant: 'acme', env: 'dev' })).toBe(
      'greentic.messaging.ingress.dev.acme.*.*',
    );
  });

  it('reads the direction of subjects and patterns alike', () => {
    expect(subjectDirection(subjectPattern('dlq'))).toBe('dlq');
    expect(subjectDirection(egressSubject('dev', 'a', 'b', 'c'))).toBe('egress');
    expect(subjectDirection('greentic.messaging.duplicate.dev.a.b.c')).toBeUndefined();
    expect(subjectDirection('greentic.messaging.*.dev.>')).toBeUndefined();
    expect(subjectDirection('greentic.other.ingress.x')).toBeUndefined();
  });

  it('accepts only tokens NATS can carry', () => {
    expect(isSubjectToken('acme-2_b')).toBe(true);
    for (const bad of ['a.b', '*', '>', 'a b', '']) expect(isSubjectToken(bad)).toBe(false);
  });
});
