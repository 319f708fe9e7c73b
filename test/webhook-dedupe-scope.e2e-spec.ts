import 'reflect-metadata';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { FlowExecutorService } from '../src/flows/flow-executor.service.js';
import type { FlowRunInput } from '../src/flows/flow-run.types.js';
import {
  deleteRedisPrefix,
  deleteStreams,
  natsAppConfig,
  requireNats,
  requireRedis,
  SHARED_NATS_URL,
  SHARED_REDIS_URL,
  uniqueNatsNamespace,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Idempotency is per session (issue #17): two users of one channel who send the same `messageId`
 * both run and both get their replies; the same user repeating an id runs once and gets one reply;
 * a repeat that will not run is never answered 504. On the embedded bus (memory sessions) and on
 * JetStream (Redis sessions, its own streams, subject prefix and key prefix), with `?wait=true` and
 * fire-and-forget (replies counted at the channel's callback URL).
 */

const SYNC_TIMEOUT_MS = 2_500;
const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';

interface Answer {
  status: number;
  ms: number;
  body: Record<string, unknown>;
}

interface Callback {
  messageId: string;
  userId: string;
  sessionKey: string;
  replies: { text: string }[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

let callbackServer: Server;
let callbackUrl = '';
const callbacks: Callback[] = [];
const callbacksFor = (userId: string, messageId: string) =>
  callbacks.filter((c) => c.userId === userId && c.messageId === messageId);

beforeAll(async () => {
  callbackServer = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      callbacks.push(JSON.parse(body) as Callback);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => callbackServer.listen(0, '127.0.0.1', r));
  callbackUrl = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/replies`;
});

afterAll(async () => {
  await new Promise((r) => callbackServer.close(r));
});

/** One runner: its URL, its flow runs, and a hold that keeps chosen users' flows from finishing. */
class Runner {
  app!: RunnerApp;
  url = '';
  runs!: MockInstance<FlowExecutorService['run']>;
  private readonly holds = new Map<string, Promise<void>>();
  private readonly releases = new Map<string, () => void>();

  async start(config: Record<string, string | number>): Promise<void> {
    const bundle = writeTempBundle({
      packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
      tenants: {
        acme: {
          packs: ['p'],
          channels: { web: { pack: 'p', flow: 'echo', settings: { callback_url: callbackUrl } } },
        },
      },
    });
    const { app, url } = await startApp({ config: { ...config, GREENTIC_BUNDLE: bundle } });
    this.app = app;
    this.url = url;
    const executor = app.get(FlowExecutorService);
    const run = executor.run.bind(executor);
    // The real flow, started only once the user's hold (if any) is released: a busy first delivery.
    this.runs = vi.spyOn(executor, 'run').mockImplementation(async (input: FlowRunInput) => {
      await this.holds.get(input.message.userId);
      return run(input);
    });
  }

  hold(userId: string): () => void {
    let resolve!: () => void;
    this.holds.set(userId, new Promise<void>((r) => (resolve = r)));
    const release = () => {
      this.holds.delete(userId);
      this.releases.delete(userId);
      resolve();
    };
    this.releases.set(userId, release);
    return release;
  }

  /** Flow runs of one user's message id. */
  runsOf(userId: string, messageId: string): number {
    return this.runs.mock.calls.filter(
      ([input]) => input.message.userId === userId && input.message.id === messageId,
    ).length;
  }

  async post(body: { userId: string; text: string; messageId: string }, wait: boolean): Promise<Answer> {
    const t0 = Date.now();
    const res = await fetch(`${this.url}/webhooks/webhook/acme/dev/default/web${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, ms: Date.now() - t0, body: (await res.json()) as Record<string, unknown> };
  }

  async close(): Promise<void> {
    for (const release of [...this.releases.values()]) release();
    await this.app?.close();
  }
}

interface BusSetup {
  name: string;
  /** Config of a runner whose duplicate window is `windowS` seconds. */
  config(label: string, windowS: number): Promise<Record<string, string | number>>;
  /** The `Nats-Msg-Id`s seen on the ingress stream, when the bus is JetStream. */
  msgIds?: () => string[];
  cleanup(): Promise<void>;
}

function inProcess(): BusSetup {
  return {
    name: 'in-process bus, memory sessions',
    config: async (_label, windowS) => ({
      PORT: 0,
      LOG_LEVEL: 'silent',
      GREENTIC_SYNC_TIMEOUT_MS: SYNC_TIMEOUT_MS,
      GREENTIC_NATS_DUPLICATE_WINDOW_S: windowS,
    }),
    cleanup: async () => undefined,
  };
}

function jetStream(): BusSetup {
  const prefixes: string[] = [];
  const redisPrefixes: string[] = [];
  const ids: string[] = [];
  let raw: NatsConnection | undefined;
  return {
    name: 'JetStream bus, Redis sessions',
    config: async (label, windowS) => {
      await requireNats();
      await requireRedis();
      const ns = uniqueNatsNamespace(label);
      const redisPrefix = uniqueRedisPrefix(label);
      prefixes.push(ns.GREENTIC_NATS_STREAM_PREFIX);
      redisPrefixes.push(redisPrefix);
      if (!raw) {
        // Watches the first runner's ingress subjects, to read the de-duplication ids on the wire.
        raw = await connect({ servers: SHARED_NATS_URL });
        raw.subscribe(`${ns.GREENTIC_NATS_SUBJECT_PREFIX}.greentic.messaging.ingress.>`, {
          callback: (_err, m) => {
            const id = m.headers?.get('Nats-Msg-Id');
            if (id) ids.push(id);
          },
        });
      }
      return natsAppConfig('', ns, {
        GREENTIC_SESSIONS: 'redis',
        REDIS_URL: SHARED_REDIS_URL,
        GREENTIC_REDIS_PREFIX: redisPrefix,
        GREENTIC_SYNC_TIMEOUT_MS: SYNC_TIMEOUT_MS,
        GREENTIC_NATS_DUPLICATE_WINDOW_S: windowS,
      });
    },
    msgIds: () => ids,
    cleanup: async () => {
      await raw?.close();
      for (const p of prefixes) await deleteStreams(SHARED_NATS_URL, p).catch(() => undefined);
      for (const p of redisPrefixes) await deleteRedisPrefix(SHARED_REDIS_URL, p).catch(() => undefined);
    },
  };
}

describe.each([inProcess(), jetStream()])('message ids are unique per session: $name', (bus) => {
  /** The default window (120 s): every repeat below is inside it. */
  const runner = new Runner();
  /** A 1 s window, for repeats the bus no longer knows but the session store does. */
  const shortWindow = new Runner();

  beforeAll(async () => {
    // Users and ids repeat between the two buses: each counts only its own replies.
    callbacks.length = 0;
    await runner.start(await bus.config('dedupe', 120));
    await shortWindow.start(await bus.config('dedupe-short', 1));
  });

  afterAll(async () => {
    await runner.close();
    await shortWindow.close();
    await bus.cleanup();
  });

  it('?wait=true: two users sending the same id on one channel both run and both get their replies', async () => {
    const [alice, bob] = await Promise.all([
      runner.post({ userId: 'alice', text: 'from alice', messageId: '1' }, true),
      runner.post({ userId: 'bob', text: 'from bob', messageId: '1' }, true),
    ]);
    expect(alice).toMatchObject({
      status: 200,
      body: { messageId: '1', replies: [{ text: 'echo from alice' }] },
    });
    expect(bob).toMatchObject({
      status: 200,
      body: { messageId: '1', replies: [{ text: 'echo from bob' }] },
    });
    expect(alice.body['sessionKey']).not.toBe(bob.body['sessionKey']);
    expect(runner.runsOf('alice', '1')).toBe(1);
    expect(runner.runsOf('bob', '1')).toBe(1);
    // Each reply also goes out once through egress, to its own user.
    await until(
      () => callbacksFor('alice', '1').length + callbacksFor('bob', '1').length === 2,
      'two callbacks',
    );
    expect(callbacksFor('alice', '1')[0]!.replies).toEqual([{ text: 'echo from alice' }]);
    expect(callbacksFor('bob', '1')[0]!.replies).toEqual([{ text: 'echo from bob' }]);
    if (bus.msgIds) {
      // JetStream's de-duplication id names the subject, the session and the message id.
      const subject = 'greentic.messaging.ingress.dev.acme.default.web';
      expect(bus.msgIds()).toEqual(
        expect.arrayContaining([
          `${subject}|["acme:webhook:alice:alice","1"]`,
          `${subject}|["acme:webhook:bob:bob","1"]`,
        ]),
      );
    }
  });

  it('fire-and-forget: two users sending the same id both run and both get their replies', async () => {
    const answers = await Promise.all(
      ['carol', 'dave'].map((u) => runner.post({ userId: u, text: `from ${u}`, messageId: 'msg-1' }, false)),
    );
    for (const a of answers)
      expect(a).toMatchObject({ status: 202, body: { accepted: true, messageId: 'msg-1' } });
    await until(
      () => callbacksFor('carol', 'msg-1').length + callbacksFor('dave', 'msg-1').length === 2,
      'a callback per user',
    );
    expect(callbacksFor('carol', 'msg-1')[0]!.replies).toEqual([{ text: 'echo from carol' }]);
    expect(callbacksFor('dave', 'msg-1')[0]!.replies).toEqual([{ text: 'echo from dave' }]);
    expect(runner.runsOf('carol', 'msg-1')).toBe(1);
    expect(runner.runsOf('dave', 'msg-1')).toBe(1);
  });

  it("?wait=true: the same user's repeat runs once and is answered with the first delivery's replies", async () => {
    const first = await runner.post({ userId: 'erin', text: 'hi', messageId: 'r-1' }, true);
    expect(first).toMatchObject({ status: 200, body: { replies: [{ text: 'echo hi' }] } });
    const again = await runner.post({ userId: 'erin', text: 'would echo otherwise', messageId: 'r-1' }, true);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expect(again.ms).toBeLessThan(SYNC_TIMEOUT_MS);
    await until(() => callbacksFor('erin', 'r-1').length === 1, 'the reply through egress');
    await sleep(300);
    expect(callbacksFor('erin', 'r-1')).toHaveLength(1);
    expect(runner.runsOf('erin', 'r-1')).toBe(1);
  });

  it("fire-and-forget: the same user's repeat is answered as a duplicate, runs once, one reply", async () => {
    const first = await runner.post({ userId: 'frank', text: 'hi', messageId: 'r-2' }, false);
    expect(first).toMatchObject({ status: 202, body: { accepted: true, messageId: 'r-2' } });
    const again = await runner.post({ userId: 'frank', text: 'hi', messageId: 'r-2' }, false);
    expect(again).toEqual({
      status: 202,
      ms: again.ms,
      body: { accepted: true, duplicate: true, messageId: 'r-2', messageIds: ['r-2'] },
    });
    await until(() => callbacksFor('frank', 'r-2').length === 1, 'the reply through egress');
    await sleep(300);
    expect(callbacksFor('frank', 'r-2')).toHaveLength(1);
    expect(runner.runsOf('frank', 'r-2')).toBe(1);
  });

  it('a repeat the bus dropped is never answered 504, even when the first delivery outlasts the wait', async () => {
    const release = runner.hold('gina');
    const first = runner.post({ userId: 'gina', text: 'slow', messageId: 'r-3' }, true);
    await until(() => runner.runsOf('gina', 'r-3') === 1, 'the first delivery to start');
    const again = await runner.post({ userId: 'gina', text: 'slow', messageId: 'r-3' }, true);
    // The first was accepted: its 504 is true, its reply still goes out. The repeat will not run.
    expect(await first).toMatchObject({ status: 504, body: { error: { code: 'reply_timeout' } } });
    expect(again).toMatchObject({
      status: 202,
      body: { accepted: true, duplicate: true, messageId: 'r-3' },
    });
    release();
    await until(() => callbacksFor('gina', 'r-3').length === 1, 'the late reply through egress');
    expect(callbacksFor('gina', 'r-3')[0]!.replies).toEqual([{ text: 'echo slow' }]);
    await sleep(300);
    expect(callbacksFor('gina', 'r-3')).toHaveLength(1);
    expect(runner.runsOf('gina', 'r-3')).toBe(1);
  });

  it('a repeat past the bus window is stopped by the session store: answered from its stored replies or as a duplicate, or 202 unrun', async () => {
    const first = await shortWindow.post({ userId: 'hank', text: 'hi', messageId: 'r-4' }, true);
    expect(first).toMatchObject({ status: 200, body: { replies: [{ text: 'echo hi' }] } });
    const quiet = await shortWindow.post({ userId: 'jill', text: 'hi', messageId: 'r-5' }, false);
    expect(quiet.status).toBe(202);
    await until(() => callbacksFor('jill', 'r-5').length === 1, "jill's reply");
    // Past the 1 s window (JetStream prunes its ids on a timer: give it twice the window).
    await sleep(2_500);
    const [again, quietAgain] = await Promise.all([
      shortWindow.post({ userId: 'hank', text: 'hi', messageId: 'r-4' }, true),
      shortWindow.post({ userId: 'jill', text: 'hi', messageId: 'r-5' }, false),
    ]);
    if (bus.name.startsWith('JetStream')) {
      // Redis keeps the replies with the session for the replay window: the repeat is answered
      // with them, still without running the flow.
      expect(again).toMatchObject({ status: 200, body: first.body });
    } else {
      // The in-memory store keeps the id only: answered as a duplicate.
      expect(again).toMatchObject({
        status: 202,
        body: { accepted: true, duplicate: true, messageId: 'r-4' },
      });
    }
    expect(again.ms).toBeLessThan(SYNC_TIMEOUT_MS);
    // Fire-and-forget is answered before the session store sees it: the bus took it, nothing runs.
    expect(quietAgain).toMatchObject({ status: 202, body: { accepted: true } });
    expect(quietAgain.body['duplicate']).toBeUndefined();
    await sleep(500);
    expect(shortWindow.runsOf('hank', 'r-4')).toBe(1);
    expect(shortWindow.runsOf('jill', 'r-5')).toBe(1);
    expect(callbacksFor('hank', 'r-4')).toHaveLength(1);
    expect(callbacksFor('jill', 'r-5')).toHaveLength(1);
    // Another user's same id is still theirs to run.
    const ivy = await shortWindow.post({ userId: 'ivy', text: 'mine', messageId: 'r-4' }, true);
    expect(ivy).toMatchObject({ status: 200, body: { replies: [{ text: 'echo mine' }] } });
  });
});
