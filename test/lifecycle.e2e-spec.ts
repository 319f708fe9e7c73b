import type { INestApplication } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/bootstrap.js';
import { LifecycleService } from '../src/health/lifecycle.service.js';
import { fixturePath } from './fixtures/fixture-paths.js';
import { RunnerProcess } from './support/runner-process.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * Health probes and graceful shutdown. The SIGTERM test runs the runner as its own process (the
 * TypeScript sources through test/support/ts-loader.mjs), loads it with webhooks whose replies
 * are delivered to a deliberately slow callback, sends SIGTERM mid-load, and checks that every
 * message the runner accepted was answered and that it exited 0.
 */
const ECHO_FLOW = `id: echo
type: messaging
nodes:
  call:
    component.exec:
      component: echo
      operation: execute
    routing:
      - to: answer
  answer:
    reply: { text: "echo: {{call.payload}}" }
`;

/** A channel's callback endpoint that answers only after `delayMs`, recording each reply. */
async function slowCallback(
  delayMs: number,
): Promise<{ server: Server; url: string; replies: Map<string, string[]> }> {
  const replies = new Map<string, string[]>();
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      setTimeout(() => {
        const m = JSON.parse(body) as { messageId: string; replies: { text?: string }[] };
        replies.set(
          m.messageId,
          m.replies.map((r) => r.text ?? ''),
        );
        res.statusCode = 200;
        res.end();
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/callback`, replies };
}

function bundleFor(callbackUrl: string): string {
  return writeTempBundle({
    // A generous deadline: the first calls start component workers, slow on a loaded CI machine.
    limits: { component_deadline_ms: 20_000 },
    packs: [{ id: 'echo', flows: { 'echo.ygtc': ECHO_FLOW }, components: { echo: fixturePath('echo') } }],
    tenants: {
      acme: {
        packs: ['echo'],
        channels: { web: { pack: 'echo', flow: 'echo', settings: { callback_url: callbackUrl } } },
      },
    },
  });
}

async function post(base: string, messageId: string, wait = false): Promise<number | 'refused'> {
  try {
    const res = await fetch(`${base}/webhooks/webhook/acme/dev/default/web${wait ? '?wait=true' : ''}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: `user-${messageId}`, text: `text of ${messageId}`, messageId }),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 'refused';
  }
}

describe('probes', () => {
  let app: INestApplication;
  let base: string;
  let callback: Awaited<ReturnType<typeof slowCallback>>;

  beforeAll(async () => {
    callback = await slowCallback(300);
    ({ app, url: base } = await startApp({
      config: { PORT: 0, LOG_LEVEL: 'silent', GREENTIC_BUNDLE: bundleFor(callback.url) },
    }));
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    callback?.server.close();
  });

  it('answers live and ready, then not ready and refusing webhooks while draining', async () => {
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({
      status: 'ok',
      checks: { packs: { up: true }, bus: { up: true }, sessions: { up: true }, lifecycle: { up: true } },
    });

    expect(await post(base, 'probe-1')).toBe(202);
    const lifecycle = app.get(LifecycleService);
    const drained = lifecycle.drain(app, 10_000);
    // The reply to probe-1 is held 300 ms by the callback, so the drain is still waiting here.
    expect(lifecycle.draining).toBe(true);
    const notReady = await fetch(`${base}/health/ready`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toMatchObject({
      status: 'unavailable',
      checks: { lifecycle: { up: false } },
    });
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const refused = await fetch(`${base}/webhooks/webhook/acme/dev/default/web`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'late', text: 'x' }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('5');
    expect(await refused.json()).toMatchObject({ error: { code: 'shutting_down' } });
    const result = await drained;
    expect(result.drained).toBe(true);
    expect(callback.replies.get('probe-1')).toEqual(['echo: text of probe-1']);
  });
});

describe('SIGTERM under load', () => {
  it('answers every accepted message, then exits 0', async () => {
    const callback = await slowCallback(200);
    const runner = await RunnerProcess.start('sigterm', {
      GREENTIC_BUNDLE: bundleFor(callback.url),
      GREENTIC_DRAIN_TIMEOUT_MS: 20_000,
      LOG_LEVEL: 'info',
    });
    try {
      const results = new Map<string, number | 'refused'>();
      let next = 0;
      let signalled = false;
      let inFlightAtSignal = 0;
      const total = 240;
      const worker = async (): Promise<void> => {
        while (next < total) {
          const id = `load-${next++}`;
          const wait = next % 10 === 0;
          results.set(id, await post(runner.url, id, wait));
          const accepted = [...results.values()].filter((s) => s === 202 || s === 200).length;
          if (!signalled && accepted >= 80) {
            signalled = true;
            inFlightAtSignal = [...results].filter(
              ([m, s]) => (s === 202 || s === 200) && !callback.replies.has(m),
            ).length;
            process.kill(runner.pid, 'SIGTERM');
          }
        }
      };
      await Promise.all(Array.from({ length: 24 }, worker));
      const exit = await runner.exited;

      const accepted = [...results].filter(([, s]) => s === 202 || s === 200).map(([m]) => m);
      const refused = [...results].filter(([, s]) => s === 503 || s === 'refused');
      expect(signalled).toBe(true);
      // Under load: replies were still on their way when the signal arrived.
      expect(inFlightAtSignal).toBeGreaterThan(0);
      expect(refused.length).toBeGreaterThan(0);
      expect(accepted.length + refused.length).toBe(total);
      const unanswered = accepted.filter((m) => !callback.replies.has(m));
      expect(unanswered, `accepted but never answered; runner log:\n${runner.log}`).toEqual([]);
      for (const m of accepted)
        expect(callback.replies.get(m), runner.log.slice(-4000)).toEqual([`echo: text of ${m}`]);
      expect(exit, runner.log).toEqual({ code: 0, signal: null });
      expect(runner.log).toContain('drained: nothing left in flight');
    } finally {
      await runner.kill();
      callback.server.close();
    }
  }, 120_000);
});
