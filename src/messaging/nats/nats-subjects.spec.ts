import { describe, expect, it } from 'vitest';
import { replySubject } from '../../core/subjects.js';
import { durableName, partitionFor, SubjectMapper } from './nats-subjects.js';

const IN = 'greentic.messaging.ingress.dev.acme.default.web';
const OUT = 'greentic.messaging.egress.dev.acme.default.web';

describe('SubjectMapper', () => {
  it('appends the partition of the ordering key to ingress and egress, not to dead letters', () => {
    const m = new SubjectMapper('', 8);
    const p = partitionFor('acme:webhook:c1:u1', 8);
    expect(m.toWire(IN, 'acme:webhook:c1:u1')).toBe(`${IN}.p${p}`);
    expect(m.toWire('greentic.messaging.dlq.dev.acme.default.web', 'k')).toBe(
      'greentic.messaging.dlq.dev.acme.default.web',
    );
    expect(m.toWire('other.subject', 'k')).toBe('other.subject');
  });

  it("names on egress the replica whose caller waits, or '_', and reads it back as the logical subject", () => {
    const m = new SubjectMapper('run42', 8);
    const p = partitionFor('acme:webhook:c1:u1', 8);
    const awaited = m.toWire(OUT, 'acme:webhook:c1:u1', replySubject('replica-a'));
    expect(awaited).toBe(`run42.${OUT}.p${p}.replica-a`);
    expect(m.toWire(OUT, 'acme:webhook:c1:u1')).toBe(`run42.${OUT}.p${p}._`);
    // A header naming anything but a reply subject names no waiter.
    expect(m.toWire(OUT, 'acme:webhook:c1:u1', 'greentic.messaging.ingress.x')).toBe(`run42.${OUT}.p${p}._`);
    expect(m.fromWire(awaited)).toBe(OUT);
    expect(m.awaitedEgressPattern(replySubject('replica-a'))).toBe(
      'run42.greentic.messaging.egress.*.*.*.*.*.replica-a',
    );
    // The partition's consumer filter matches the publish, with a waiter or without.
    expect(m.partitionFilter(OUT, p)).toBe(`run42.${OUT}.p${p}.*`);
  });

  it('keeps one session on one partition and spreads sessions over all of them', () => {
    const m = new SubjectMapper('', 16);
    expect(m.partitionOf('s-1')).toBe(m.partitionOf('s-1'));
    const used = new Set(Array.from({ length: 500 }, (_, i) => m.partitionOf(`acme:webhook:c${i}:u${i}`)));
    expect(used.size).toBe(16);
  });

  it('round-trips wire subjects with a prefix back to logical subjects', () => {
    const m = new SubjectMapper('run42.x', 4);
    const wire = m.toWire(IN, 'k');
    expect(wire.startsWith(`run42.x.${IN}.p`)).toBe(true);
    expect(m.fromWire(wire)).toBe(IN);
    expect(m.fromWire(`run42.x.${IN}`)).toBe(IN);
    expect(m.fromWire('run42.x.greentic.messaging.dlq.dev.acme.default.web')).toBe(
      'greentic.messaging.dlq.dev.acme.default.web',
    );
    expect(m.streamSubject('egress')).toBe('run42.x.greentic.messaging.egress.>');
  });

  it('builds consumer filters that cannot swallow the partition token', () => {
    const m = new SubjectMapper('', 4);
    expect(m.partitionFilter('greentic.messaging.ingress.>', 3)).toBe(
      'greentic.messaging.ingress.*.*.*.*.p3',
    );
    expect(m.partitionFilter('greentic.messaging.egress.dev.acme.>', 0)).toBe(
      'greentic.messaging.egress.dev.acme.*.*.p0.*',
    );
    expect(m.partitionFilter(IN, 1)).toBe(`${IN}.p1`);
    expect(m.unpartitionedFilter('greentic.messaging.ingress.>')).toBe('greentic.messaging.ingress.*.*.*.*');
    expect(m.corePattern('greentic.messaging.egress.>')).toBe('greentic.messaging.egress.>');
    expect(m.corePattern('greentic.messaging.egress.dev.acme.default.web')).toBe(
      'greentic.messaging.egress.dev.acme.default.web.*.*',
    );
    expect(m.corePattern(IN)).toBe(`${IN}.*`);
  });

  it('refuses patterns that do not name a direction or do not fit the subject layout', () => {
    const m = new SubjectMapper('', 4);
    expect(() => m.partitionFilter('greentic.messaging.*.dev.>', 0)).toThrow(/must name its direction/);
    expect(() => m.partitionFilter('greentic.messaging.ingress.dev', 0)).toThrow(/does not fit/);
    expect(() => new SubjectMapper('bad prefix', 4)).toThrow(/invalid token/);
    expect(() => new SubjectMapper('', 0)).toThrow(/positive integer/);
  });

  it('makes durable names NATS accepts', () => {
    expect(durableName('greentic-runner', 'abc', 'p1')).toBe('greentic-runner_abc_p1');
    expect(durableName('a.b c>*', 'x')).toBe('a_b_c___x');
  });
});
