import { BadRequestException, Controller, Logger, type INestMicroservice } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { Ctx, MessagePattern, Payload } from '@nestjs/microservices';
import { Test } from '@nestjs/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GreenticError, TenancyMismatchError } from '../common/errors.js';
import { ingressSubject } from '../core/subjects.js';
import { BusContext } from './bus.context.js';
import { BusTransport } from './bus.transport.js';
import { GreenticExceptionFilter } from './greentic-exception.filter.js';
import { InProcessBus } from './in-process.bus.js';
import { ProviderAuthError } from './providers/messaging-provider.js';

/** What each message's handler throws on its deliveries, by the envelope's `id`; then it succeeds. */
const script: Record<string, (delivery: number) => unknown> = {
  pipe: () => new BadRequestException(['text must be a string']),
  unauthorized: () => new ProviderAuthError('slack', 'signature mismatch'),
  mismatch: () => new TenancyMismatchError('message claims globex/dev/default/web on subject x'),
  conflict: (n) => (n === 1 ? new GreenticError('session_conflict', 'lease held elsewhere', 409) : undefined),
  string: () => 'not an Error',
  crash: (n) => (n < 3 ? new TypeError("Cannot read properties of undefined (reading 'x')") : undefined),
};

@Controller()
class ScriptedController {
  readonly calls: { id: string; delivery: number }[] = [];

  @MessagePattern('greentic.messaging.ingress.>')
  handle(@Payload() data: { id: string }, @Ctx() ctx: BusContext): { ok: true } {
    const delivery = ctx.getDeliveryCount();
    this.calls.push({ id: data.id, delivery });
    const thrown = script[data.id]?.(delivery);
    if (thrown !== undefined) throw thrown;
    return { ok: true };
  }
}

interface DeadLetter {
  subject: string;
  error: { code: string; message: string };
  deliveries: number;
  data: { id: string };
  headers: Record<string, string>;
}

const SUBJECT = ingressSubject('dev', 'acme', 'default', 'web');
const until = async (cond: () => boolean, what: string) => {
  const deadline = Date.now() + 5_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

let app: INestMicroservice | undefined;
let bus: InProcessBus | undefined;
afterEach(async () => {
  await app?.close();
  await bus?.close();
  vi.restoreAllMocks();
});

/** A Nest microservice consuming the embedded bus through BusTransport, the filter global. */
async function start() {
  bus = new InProcessBus();
  const moduleRef = await Test.createTestingModule({
    controllers: [ScriptedController],
    providers: [{ provide: APP_FILTER, useClass: GreenticExceptionFilter }],
  }).compile();
  app = moduleRef.createNestMicroservice({
    strategy: new BusTransport(bus, { queue: 'runner', maxDeliver: 3 }),
    logger: false,
  });
  await app.listen();
  const dead: DeadLetter[] = [];
  await bus.subscribe<Omit<DeadLetter, 'headers'>>(
    'greentic.messaging.dlq.>',
    async (m) => void dead.push({ ...m.data, headers: m.headers }),
  );
  return { calls: app.get(ScriptedController).calls, dead, bus };
}

describe('GreenticExceptionFilter on the bus: the bus decides, with one rule', () => {
  it("dead-letters a pipe's 400, a 401 and a refused tenancy after one delivery, as the bus's own record", async () => {
    const { calls, dead, bus } = await start();
    for (const id of ['pipe', 'unauthorized', 'mismatch']) await bus.publish(SUBJECT, { id });
    await until(() => dead.length === 3, 'three dead letters');
    await new Promise((r) => setTimeout(r, 200));
    // One delivery each: no retry of what no retry can fix (the filter retried a 401 before).
    expect(calls).toEqual([
      { id: 'pipe', delivery: 1 },
      { id: 'unauthorized', delivery: 1 },
      { id: 'mismatch', delivery: 1 },
    ]);
    const byId = Object.fromEntries(dead.map((d) => [d.data.id, d]));
    expect(byId['pipe']).toMatchObject({
      subject: SUBJECT,
      error: { code: 'http_400', message: 'text must be a string' },
      deliveries: 1,
      headers: { 'greentic-error': 'http_400', 'greentic-original-subject': SUBJECT },
    });
    expect(byId['unauthorized']).toMatchObject({
      error: { code: 'provider_unauthorized', message: 'slack: signature mismatch' },
      deliveries: 1,
    });
    expect(byId['mismatch']).toMatchObject({ error: { code: 'tenancy_mismatch' }, deliveries: 1 });
    expect(dead).toHaveLength(3);
  });

  it('redelivers a 409 and an unexpected error, logging the stack once per failure; they then succeed', async () => {
    const errors: unknown[][] = [];
    vi.spyOn(Logger.prototype, 'error').mockImplementation((...args: unknown[]) => void errors.push(args));
    const { calls, dead, bus } = await start();
    await bus.publish(SUBJECT, { id: 'conflict' });
    await bus.publish(SUBJECT, { id: 'crash' });
    await until(() => calls.filter((c) => c.id === 'crash').length === 3, 'the third delivery of crash');
    await until(() => calls.filter((c) => c.id === 'conflict').length === 2, 'the redelivered conflict');
    await new Promise((r) => setTimeout(r, 200));
    expect(dead).toEqual([]);
    // The filter logs an unexpected error's stack (the bus logs only its text), with the tenant.
    const stacks = errors.filter(([, msg]) => msg === 'bus handler failed');
    expect(stacks).toHaveLength(2);
    expect(stacks[0]![0]).toMatchObject({ subject: SUBJECT, tenant: 'acme' });
    expect(String((stacks[0]![0] as { err: string }).err)).toMatch(/^TypeError: Cannot read properties/);
    // A refusal the runner raised (the 409) is not logged here as a failure.
    expect(errors.flat().some((a) => String((a as { err?: string })?.err).includes('lease held'))).toBe(
      false,
    );
  });

  it('redelivers a thrown non-Error value, then dead-letters it: it is never acknowledged as done', async () => {
    const { calls, dead, bus } = await start();
    await bus.publish(SUBJECT, { id: 'string' });
    await until(() => dead.length === 1, 'the dead letter');
    expect(calls.map((c) => c.delivery)).toEqual([1, 2, 3]);
    expect(dead[0]).toMatchObject({
      error: { code: 'handler_failed', message: 'not an Error' },
      deliveries: 3,
    });
  });
});
