import 'reflect-metadata';
import net from 'node:net';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * A client that goes away before its request body has arrived (a dropped connection, a killed
 * caller) is logged as what it is, a client's abort with its tenant, not as a 500 "internal error"
 * with a stack in the error log; the runner goes on answering.
 */

const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';
let app: RunnerApp;
let url: URL;
let error: MockInstance;
let warn: MockInstance;

beforeAll(async () => {
  error = vi.spyOn(Logger.prototype, 'error');
  warn = vi.spyOn(Logger.prototype, 'warn');
  const bundle = writeTempBundle({
    packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
    tenants: { acme: { packs: ['p'], channels: { web: { pack: 'p', flow: 'echo' } } } },
  });
  const started = await startApp({
    config: { GREENTIC_BUNDLE: bundle, PORT: 0, LOG_LEVEL: 'silent', GREENTIC_COMPONENT_POOL_MIN: 0 },
  });
  app = started.app;
  url = new URL(started.url);
});

afterAll(async () => {
  error.mockRestore();
  warn.mockRestore();
  await app?.close();
});

/** Sends the head and part of a body that says it is longer, then closes the connection. */
function abortMidBody(path: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(Number(url.port), url.hostname, () => {
      s.write(
        `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"userId":`,
      );
      setTimeout(() => s.destroy(), 50);
    });
    s.on('close', () => resolve());
    s.on('error', () => undefined);
  });
}

describe('a request aborted by its client', () => {
  it('is logged as an abort with its tenant, not as an internal error, and the next request is served', async () => {
    await abortMidBody('/webhooks/webhook/acme/dev/default/web');
    const aborted = () =>
      warn.mock.calls.filter(([, msg]) => msg === 'request aborted by the client').map(([obj]) => obj);
    for (let i = 0; i < 50 && aborted().length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(aborted()).toEqual([
      expect.objectContaining({ tenant: 'acme', channel: 'web', status: 499, code: 'request_aborted' }),
    ]);
    expect(error.mock.calls.filter(([, msg]) => msg === 'request failed')).toEqual([]);

    const res = await fetch(`${url.origin}/webhooks/webhook/acme/dev/default/web?wait=true`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'u', text: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ replies: [{ text: 'echo hi' }] });
  });
});
