import 'reflect-metadata';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { FlowExecutorService } from '../src/flows/flow-executor.service.js';
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
 * `?wait=true` with a repeated message id, on the production wiring (JetStream bus, Redis
 * sessions, two replicas): JetStream drops the repeated publish as a duplicate, so no flow runs
 * and no new reply comes; the caller is answered at once with the reply the first delivery got,
 * on whichever replica it lands, instead of a 504 after the sync timeout.
 */

const SYNC_TIMEOUT_MS = 3_000;
const ns = uniqueNatsNamespace('dupwait');
const redisPrefix = uniqueRedisPrefix('dupwait');
const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';

let replicas: { app: RunnerApp; url: string; runs: MockInstance }[] = [];

interface SyncAnswer {
  status: number;
  ms: number;
  body: { messageId?: string; sessionKey?: string; status?: string; replies?: { text: string }[] };
}

async function post(
  replica: number,
  body: { userId: string; text: string; messageId?: string },
  tenant = 'acme',
): Promise<SyncAnswer> {
  const t0 = Date.now();
  const res = await fetch(`${replicas[replica]!.url}/webhooks/webhook/${tenant}/dev/default/web?wait=true`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, ms: Date.now() - t0, body: (await res.json()) as SyncAnswer['body'] };
}

const flowRuns = () => replicas.reduce((n, r) => n + r.runs.mock.calls.length, 0);

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  const tenant = { packs: ['p'], channels: { web: { pack: 'p', flow: 'echo' } } };
  const bundle = writeTempBundle({
    packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
    tenants: { acme: tenant, globex: tenant },
  });
  for (let i = 0; i < 2; i++) {
    const { app, url } = await startApp({
      config: natsAppConfig(bundle, ns, {
        GREENTIC_SESSIONS: 'redis',
        REDIS_URL: SHARED_REDIS_URL,
        GREENTIC_REDIS_PREFIX: redisPrefix,
        GREENTIC_SYNC_TIMEOUT_MS: SYNC_TIMEOUT_MS,
      }),
    });
    replicas.push({ app, url, runs: vi.spyOn(app.get(FlowExecutorService), 'run') });
  }
});

afterAll(async () => {
  for (const r of replicas) await r.app.close();
  replicas = [];
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX).catch(() => undefined);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix).catch(() => undefined);
});

describe('?wait=true with a repeated message id', () => {
  it('answers the repeat at once with the same replies, on either replica; the flow ran once', async () => {
    const runs0 = flowRuns();
    const first = await post(0, { userId: 'alice', text: 'hi', messageId: 'dup-1' });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      messageId: 'dup-1',
      status: 'completed',
      replies: [{ text: 'echo hi' }],
    });

    // The same id again (a client retry), with a text that would echo differently if it ran.
    for (const replica of [0, 1]) {
      const again = await post(replica, { userId: 'alice', text: 'hi again', messageId: 'dup-1' });
      expect(again.status).toBe(200);
      expect(again.body).toEqual(first.body);
      expect(again.ms).toBeLessThan(1_000);
    }
    expect(flowRuns() - runs0).toBe(1);
  });

  it('answers a repeat sent while the first is still running once its reply comes, both 200', async () => {
    const runs0 = flowRuns();
    // Two callers on one replica and one on the other, all at once.
    const answers = await Promise.all(
      [0, 0, 1].map((replica) => post(replica, { userId: 'bob', text: 'one', messageId: 'dup-2' })),
    );
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[0]!.body.replies).toEqual([{ text: 'echo one' }]);
    for (const a of answers) {
      expect(a.body).toEqual(answers[0]!.body);
      expect(a.ms).toBeLessThan(SYNC_TIMEOUT_MS);
    }
    expect(flowRuns() - runs0).toBe(1);
  });

  it("never answers with another user's or another tenant's reply to the same id", async () => {
    const first = await post(0, { userId: 'carol', text: 'secret', messageId: 'dup-3' });
    expect(first.body.replies).toEqual([{ text: 'echo secret' }]);
    const runs0 = flowRuns();
    // Another user on the same channel reusing the id: ids are per session, so theirs is a message
    // of its own, run and answered with its own reply; carol's is not theirs to see.
    const mallory = await post(1, { userId: 'mallory', text: 'x', messageId: 'dup-3' });
    expect(mallory.status).toBe(200);
    expect(mallory.body.replies).toEqual([{ text: 'echo x' }]);
    expect(JSON.stringify(mallory.body)).not.toContain('secret');
    expect(flowRuns() - runs0).toBe(1);
    // Another tenant's channel: its own message, run and answered with its own reply.
    const globex = await post(1, { userId: 'carol', text: 'mine', messageId: 'dup-3' }, 'globex');
    expect(globex.status).toBe(200);
    expect(globex.body.replies).toEqual([{ text: 'echo mine' }]);
    expect(flowRuns() - runs0).toBe(2);
  });
});
