import 'reflect-metadata';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type RunnerApp } from '../src/bootstrap.js';
import {
  deleteStreams,
  natsAppConfig,
  requireNats,
  SHARED_NATS_URL,
  uniqueNatsNamespace,
} from './support/nats-redis-servers.js';
import { writeTempBundle } from './support/temp-bundle.js';

/**
 * A sync webhook whose wait runs out while its ingress publish is still waiting for JetStream's
 * acknowledgement (here a 1 ms timeout, with everything NATS sends the runner held back 25 ms by a
 * proxy, so the acknowledgement always comes after the timeout; in production a NATS stall, or a
 * request carrying several messages published one after the other). The caller gets its 504 and
 * the runner goes on: before, the wait's rejection had no handler yet, surfaced as an unhandled
 * rejection and ended the process.
 */

const SERVER_DELAY_MS = 25;

/** A NATS proxy that passes the runner's bytes at once and the server's after SERVER_DELAY_MS, in order. */
async function slowServerProxy(): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(SHARED_NATS_URL);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(target.port || 4222), target.hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.on('data', (chunk: Buffer) => setTimeout(() => client.write(chunk), SERVER_DELAY_MS));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `nats://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const ns = uniqueNatsNamespace('synctimeout');
const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';

let app: RunnerApp;
let url: string;
let proxy: Awaited<ReturnType<typeof slowServerProxy>>;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  await requireNats();
  process.on('unhandledRejection', onUnhandled);
  const bundle = writeTempBundle({
    packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
    tenants: { acme: { packs: ['p'], channels: { web: { pack: 'p', flow: 'echo' } } } },
  });
  proxy = await slowServerProxy();
  ({ app, url } = await startApp({
    config: natsAppConfig(bundle, ns, { GREENTIC_SYNC_TIMEOUT_MS: 1, NATS_URL: proxy.url }),
  }));
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await app?.close();
  await proxy?.close();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX).catch(() => undefined);
});

const post = (body: object, wait: boolean) =>
  fetch(`${url}/webhooks/webhook/acme/dev/default/web${wait ? '?wait=true' : ''}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('a sync wait shorter than the ingress publish', () => {
  it('answers 504 and keeps serving: no unhandled rejection, the next calls are taken', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await post({ userId: `u${i}`, text: 'hi', messageId: `slow-${i}` }, true);
      expect(res.status).toBe(504);
      expect(await res.json()).toMatchObject({ error: { code: 'reply_timeout', messageId: `slow-${i}` } });
    }
    // Give any stray rejection a turn to surface before looking.
    await new Promise((r) => setTimeout(r, 100));
    expect(unhandled).toEqual([]);

    const accepted = await post({ userId: 'u9', text: 'later', messageId: 'after' }, false);
    expect(accepted.status).toBe(202);
    const health = await fetch(`${url}/health`);
    expect(health.status).toBe(200);
  });
});
