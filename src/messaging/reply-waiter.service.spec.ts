import { afterEach, describe, expect, it } from 'vitest';
import type { RunnerConfig } from '../config/runner-config.js';
import { InProcessBus } from './in-process.bus.js';
import { type DuplicateNotice, type EgressMessage } from '../core/message-envelope.js';
import { egressSubject, replySubject } from '../core/subjects.js';
import { ReplyWaiter, type ReplyRef } from './reply-waiter.service.js';

const WEB = egressSubject('dev', 'acme', 'default', 'web');

function notice(inReplyTo: string, sessionKey = 's1'): DuplicateNotice {
  return { inReplyTo, sessionKey, tenant: 'acme', env: 'dev', team: 'default', channel: 'web' };
}
const OTHER = egressSubject('dev', 'globex', 'default', 'web');

function egress(inReplyTo: string, sessionKey = 's1', text = `re ${inReplyTo}`): EgressMessage {
  return {
    id: `${inReplyTo}:reply`,
    inReplyTo,
    tenant: 'acme',
    env: 'dev',
    team: 'default',
    channel: 'web',
    provider: 'webhook',
    conversationId: 'c',
    userId: 'u',
    sessionKey,
    replies: [{ text }],
    status: 'completed',
    timestamp: new Date().toISOString(),
  };
}

const ref = (messageId: string, sessionKey = 's1', subject = WEB): ReplyRef => ({
  subject,
  messageId,
  sessionKey,
});

let open: { bus: InProcessBus; waiter: ReplyWaiter }[] = [];

async function setup(windowSeconds = 120, bus = new InProcessBus(), replica = 'replica-a') {
  const waiter = new ReplyWaiter(bus, {
    GREENTIC_NATS_DUPLICATE_WINDOW_S: windowSeconds,
    GREENTIC_REPLICA_ID: replica,
  } as RunnerConfig);
  await waiter.onApplicationBootstrap();
  open.push({ bus, waiter });
  return { bus, waiter };
}

/** Settles within `ms`, else `'pending'`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
}

afterEach(async () => {
  for (const { bus, waiter } of open) {
    await waiter.onApplicationShutdown();
    await bus.close();
  }
  open = [];
});

describe('ReplyWaiter', () => {
  it("answers a waiting caller with its message's reply, never with another channel's", async () => {
    const { bus, waiter } = await setup();
    const w = waiter.expect(ref('m1'), 2_000);
    await bus.publish(waiter.subject, { ...egress('m1'), tenant: 'globex' });
    expect(await within(w.reply, 50)).toBe('pending');
    await bus.publish(waiter.subject, egress('m1'));
    expect(await w.reply).toMatchObject({ inReplyTo: 'm1', replies: [{ text: 're m1' }] });
    expect(waiter.pending).toBe(0);
  });

  it('answers a repeated message id at once with the remembered reply', async () => {
    const { bus, waiter } = await setup();
    const first = waiter.expect(ref('m1'), 2_000);
    await bus.publish(waiter.subject, egress('m1'));
    const reply = await first.reply;
    // Nothing is published again: only the remembered reply can answer, and long before the
    // 5 s deadline (a loaded CI machine can take tens of ms to schedule the answer).
    const t0 = Date.now();
    expect(await waiter.expect(ref('m1'), 5_000).reply).toEqual(reply);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(waiter.pending).toBe(0);
  });

  it("never gives a remembered reply to another session reusing the id, nor another channel's", async () => {
    const { bus, waiter } = await setup();
    await bus.publish(waiter.subject, egress('m1', 's1'));
    await new Promise((r) => setTimeout(r, 10));
    await expect(waiter.expect(ref('m1', 's2'), 100).reply).rejects.toMatchObject({
      code: 'reply_timeout',
      httpStatus: 504,
    });
    await expect(waiter.expect(ref('m1', 's1', OTHER), 100).reply).rejects.toMatchObject({
      code: 'reply_timeout',
    });
  });

  it('answers every caller waiting on the same id (a retry while the first still runs)', async () => {
    const { bus, waiter } = await setup();
    const a = waiter.expect(ref('m1'), 2_000);
    const b = waiter.expect(ref('m1'), 2_000);
    const other = waiter.expect(ref('m1', 's2'), 2_000);
    expect(waiter.pending).toBe(3);
    await bus.publish(waiter.subject, egress('m1'));
    expect((await a.reply)?.inReplyTo).toBe('m1');
    expect((await b.reply)?.inReplyTo).toBe('m1');
    expect(await within(other.reply, 50)).toBe('pending');
    other.cancel();
    expect(waiter.pending).toBe(0);
  });

  it('forgets replies after the duplicate window and beyond its bound, oldest first', async () => {
    const { bus, waiter } = await setup(0.2);
    waiter.recentMax = 2;
    for (const id of ['m1', 'm2', 'm3']) await bus.publish(waiter.subject, egress(id));
    await new Promise((r) => setTimeout(r, 10));
    expect(waiter.remembered).toBe(2);
    await expect(waiter.expect(ref('m1'), 50).reply).rejects.toMatchObject({ code: 'reply_timeout' });
    expect((await waiter.expect(ref('m3'), 50).reply)?.inReplyTo).toBe('m3');
    await new Promise((r) => setTimeout(r, 250));
    await expect(waiter.expect(ref('m3'), 50).reply).rejects.toMatchObject({ code: 'reply_timeout' });
  });

  it('times out with 504 when no reply comes, and a cancelled wait never settles', async () => {
    const { waiter } = await setup();
    await expect(waiter.expect(ref('m9'), 30).reply).rejects.toMatchObject({
      code: 'reply_timeout',
      httpStatus: 504,
      details: { messageId: 'm9' },
    });
    const c = waiter.expect(ref('m10'), 30);
    c.cancel();
    expect(await within(c.reply, 80)).toBe('pending');
    expect(waiter.pending).toBe(0);
  });

  it('a wait that times out before its caller awaits it raises no unhandled rejection; the caller still gets the 504', async () => {
    const { waiter } = await setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // As IngressService does: the wait is registered, then the publish takes longer than it.
      const w = waiter.expect(ref('m11'), 20);
      await new Promise((r) => setTimeout(r, 80));
      expect(unhandled).toEqual([]);
      await expect(w.reply).rejects.toMatchObject({ code: 'reply_timeout', httpStatus: 504 });
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('remembers replies per session: two users who reused one id each get their own', async () => {
    const { bus, waiter } = await setup();
    await bus.publish(waiter.subject, egress('m1', 's1', 'for s1'));
    await bus.publish(waiter.subject, egress('m1', 's2', 'for s2'));
    await new Promise((r) => setTimeout(r, 10));
    expect((await waiter.expect(ref('m1', 's1'), 50).reply)?.replies).toEqual([{ text: 'for s1' }]);
    expect((await waiter.expect(ref('m1', 's2'), 50).reply)?.replies).toEqual([{ text: 'for s2' }]);
  });

  it('answers a repeat the bus dropped with null at the timeout, never a 504', async () => {
    const { bus, waiter } = await setup();
    const w = waiter.expect(ref('m1'), 60);
    w.duplicate();
    expect(await w.reply).toBeNull();
    expect(waiter.pending).toBe(0);
    // The first delivery's replies still win when they come in time.
    const late = waiter.expect(ref('m2'), 2_000);
    late.duplicate();
    await bus.publish(waiter.subject, egress('m2'));
    expect((await late.reply)?.inReplyTo).toBe('m2');
  });

  it("answers a repeat the session refused at once with null, only for that session's callers", async () => {
    const { bus, waiter } = await setup();
    const mine = waiter.expect(ref('m1', 's1'), 2_000);
    const theirs = waiter.expect(ref('m1', 's2'), 2_000);
    await bus.publish(waiter.subject, notice('m1', 's1'));
    expect(await within(mine.reply, 500)).toBeNull();
    expect(await within(theirs.reply, 50)).toBe('pending');
    theirs.cancel();
    // Remembered: the next repeat of the same session is answered at once too.
    expect(await within(waiter.expect(ref('m1', 's1'), 2_000).reply, 50)).toBeNull();
  });

  it("listens on its own replica's reply subject only", async () => {
    const { bus, waiter } = await setup();
    const other = await setup(120, bus, 'replica-b');
    expect(waiter.subject).toBe(replySubject('replica-a'));
    expect(other.waiter.subject).toBe(replySubject('replica-b'));
    const w = waiter.expect(ref('m1'), 2_000);
    await bus.publish(other.waiter.subject, egress('m1'));
    expect(await within(w.reply, 50)).toBe('pending');
    await bus.publish(waiter.subject, egress('m1'));
    expect((await w.reply)?.inReplyTo).toBe('m1');
  });

  it('ignores a notice that names another channel, and never lets one hide replies', async () => {
    const { bus, waiter } = await setup();
    const w = waiter.expect(ref('m1'), 2_000);
    await bus.publish(waiter.subject, { ...notice('m1'), tenant: 'globex' });
    expect(await within(w.reply, 50)).toBe('pending');
    w.cancel();
    await bus.publish(waiter.subject, egress('m2'));
    await bus.publish(waiter.subject, notice('m2'));
    await new Promise((r) => setTimeout(r, 10));
    expect((await waiter.expect(ref('m2'), 50).reply)?.inReplyTo).toBe('m2');
  });
});
