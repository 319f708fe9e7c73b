import { describe, expect, it } from 'vitest';
import { TenancyMismatchError } from '../common/errors.js';
import type { RunnerConfig } from '../config/runner-config.js';
import { InProcessBus } from './in-process.bus.js';
import { subjectMatches } from '../core/message-bus.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('subjectMatches', () => {
  it('follows NATS wildcard rules', () => {
    expect(subjectMatches('a.*.c', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.*.c', 'a.b.d')).toBe(false);
    expect(subjectMatches('a.>', 'a.b.c')).toBe(true);
    expect(subjectMatches('a.>', 'a')).toBe(false);
    expect(subjectMatches('a.b', 'a.b.c')).toBe(false);
  });
});

describe('InProcessBus', () => {
  it('delivers once per queue group and to every plain subscriber', async () => {
    const bus = new InProcessBus();
    const seen: string[] = [];
    await bus.subscribe('x.>', async () => void seen.push('q1'), { queue: 'q' });
    await bus.subscribe('x.>', async () => void seen.push('q2'), { queue: 'q' });
    await bus.subscribe('x.>', async () => void seen.push('plain'));
    await bus.publish('x.y', {});
    await bus.publish('x.y', {});
    await tick();
    expect(seen.filter((s) => s === 'plain')).toHaveLength(2);
    expect(seen.filter((s) => s.startsWith('q')).sort()).toEqual(['q1', 'q2']);
    await bus.close();
  });

  it('gives the named reply subject its copy once per publish, a repeat dropped by id included', async () => {
    const bus = new InProcessBus();
    const seen: string[] = [];
    await bus.subscribe('out.>', async (m) => void seen.push(m.subject));
    await bus.subscribe('reply.a', async (m) => void seen.push(m.subject));
    await bus.subscribe('reply.b', async (m) => void seen.push(m.subject));
    expect(await bus.publish('out.x', {}, { msgId: 'r1', replyTo: 'reply.a' })).toEqual({ duplicate: false });
    expect(await bus.publish('out.x', {}, { msgId: 'r1', replyTo: 'reply.a' })).toEqual({ duplicate: true });
    await tick();
    expect(seen.sort()).toEqual(['out.x', 'reply.a', 'reply.a']);
    await bus.close();
  });

  it("hands subscribers the publisher's headers and id, and one payload none of them can change", async () => {
    const bus = new InProcessBus();
    const got: { headers: Record<string, string>; data: { nested: { n: number } } }[] = [];
    await bus.subscribe<{ nested: { n: number } }>('h.>', async (m) => void got.push(m));
    await bus.subscribe<{ nested: { n: number } }>('h.>', async (m) => void got.push(m));
    const headers = { 'greentic-tenant': 'acme' };
    await bus.publish('h.x', { nested: { n: 1 } }, { headers, msgId: 'm1' });
    await tick();
    expect(got.map((m) => m.headers)).toEqual([
      { 'greentic-tenant': 'acme', 'Nats-Msg-Id': 'm1' },
      { 'greentic-tenant': 'acme', 'Nats-Msg-Id': 'm1' },
    ]);
    expect(headers).toEqual({ 'greentic-tenant': 'acme' });
    expect(() => {
      got[0]!.data.nested.n = 2;
    }).toThrow(TypeError);
    expect(got[1]!.data.nested.n).toBe(1);
    await bus.close();
  });

  it('drops a duplicate msgId inside the window, and says so to the publisher', async () => {
    const bus = new InProcessBus();
    let n = 0;
    await bus.subscribe('a', async () => void n++);
    expect(await bus.publish('a', 1, { msgId: 'm1' })).toEqual({ duplicate: false });
    expect(await bus.publish('a', 1, { msgId: 'm1' })).toEqual({ duplicate: true });
    expect(await bus.publish('a', 1, { msgId: 'm2' })).toEqual({ duplicate: false });
    expect(await bus.publish('b', 1, { msgId: 'm1' })).toEqual({ duplicate: false });
    expect(await bus.publish('a', 1)).toEqual({ duplicate: false });
    await tick();
    expect(n).toBe(3);
    expect((await bus.health()).details).toMatchObject({ published: 4, duplicates: 1 });
    await bus.close();
  });

  it('keeps ids for the configured duplicate window only', async () => {
    const bus = new InProcessBus({ GREENTIC_NATS_DUPLICATE_WINDOW_S: 0.05 } as RunnerConfig);
    expect(await bus.publish('a', 1, { msgId: 'm1' })).toEqual({ duplicate: false });
    expect(await bus.publish('a', 1, { msgId: 'm1' })).toEqual({ duplicate: true });
    await new Promise((r) => setTimeout(r, 80));
    expect(await bus.publish('a', 1, { msgId: 'm1' })).toEqual({ duplicate: false });
    await bus.close();
  });

  it("redelivers a failing message, then dead-letters it in the JetStream bus's shape", async () => {
    const bus = new InProcessBus();
    let attempts = 0;
    const { dlq, headers } = await deadLetters(bus);
    await bus.subscribe(
      'greentic.messaging.ingress.dev.t.team.c',
      async () => {
        attempts++;
        throw new Error('poison');
      },
      { maxDeliver: 3 },
    );
    await bus.publish('greentic.messaging.ingress.dev.t.team.c', { x: 1 });
    for (let i = 0; i < 100 && dlq.length === 0; i++) await tick();
    await bus.close();
    expect(attempts).toBe(3);
    expect(dlq).toEqual([
      {
        subject: 'greentic.messaging.ingress.dev.t.team.c',
        error: { code: 'handler_failed', message: 'poison' },
        deliveries: 3,
        data: { x: 1 },
      },
    ]);
    expect(headers[0]).toMatchObject({
      'greentic-error': 'handler_failed',
      'greentic-original-subject': 'greentic.messaging.ingress.dev.t.team.c',
    });
  });

  it('dead-letters at once what no redelivery can fix (a permanent domain error), with its code', async () => {
    const bus = new InProcessBus();
    let attempts = 0;
    const { dlq } = await deadLetters(bus);
    await bus.subscribe(
      'greentic.messaging.egress.dev.t.team.c',
      async () => {
        attempts++;
        throw new TenancyMismatchError(
          'message claims u/dev/team/c on subject greentic.messaging.egress.dev.t.team.c',
        );
      },
      { maxDeliver: 5 },
    );
    await bus.publish('greentic.messaging.egress.dev.t.team.c', { x: 1 });
    for (let i = 0; i < 100 && dlq.length === 0; i++) await tick();
    await bus.close();
    expect(attempts).toBe(1);
    expect(dlq.map(({ error, deliveries }) => ({ error, deliveries }))).toEqual([
      {
        error: {
          code: 'tenancy_mismatch',
          message: 'message claims u/dev/team/c on subject greentic.messaging.egress.dev.t.team.c',
        },
        deliveries: 1,
      },
    ]);
  });

  it('dead-letters a message whose handler rejects with no error at all, and still closes', async () => {
    const bus = new InProcessBus();
    const { dlq } = await deadLetters(bus);
    await bus.subscribe('greentic.messaging.ingress.dev.t.team.c', () => Promise.reject(undefined), {
      maxDeliver: 2,
    });
    await bus.publish('greentic.messaging.ingress.dev.t.team.c', { x: 1 });
    for (let i = 0; i < 100 && dlq.length === 0; i++) await tick();
    expect(dlq.map((d) => d.error)).toEqual([{ code: 'handler_failed', message: 'undefined' }]);
    expect((await bus.health()).details['inflight']).toBe(0);
    // Before, reading `.message` of `undefined` rejected the redelivery: the message stayed in
    // flight and close() waited for it forever.
    await expect(Promise.race([bus.close().then(() => 'closed'), sleep(2_000)])).resolves.toBe('closed');
  });
});

interface DeadLetter {
  subject: string;
  error: { code: string; message: string };
  deliveries: number;
  data: unknown;
}

/** Every dead letter `bus` publishes, with its headers, as they arrive. */
async function deadLetters(bus: InProcessBus) {
  const dlq: DeadLetter[] = [];
  const headers: Record<string, string>[] = [];
  await bus.subscribe<DeadLetter>('greentic.messaging.dlq.>', async (m) => {
    dlq.push(m.data);
    headers.push(m.headers);
  });
  return { dlq, headers };
}

const sleep = (ms: number) => new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms));
