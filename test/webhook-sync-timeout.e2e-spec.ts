import 'reflect-metadata';
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
 * acknowledgement (here a 1 ms timeout; in production a NATS stall, or a request carrying several
 * messages published one after the other). The caller gets its 504 and the runner goes on: before,
 * the wait's rejection had no handler yet, surfaced as an unhandled rejection and ended the process.
 */

const ns = uniqueNatsNamespace('synctimeout');
const ECHO = 'id: echo\ntype: messaging\nnodes:\n  say:\n    reply: "echo {{message.text}}"\n';

let app: RunnerApp;
let url: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  await requireNats();
  process.on('unhandledRejection', onUnhandled);
  const bundle = writeTempBundle({
    packs: [{ id: 'p', flows: { 'echo.ygtc': ECHO } }],
    tenants: { acme: { packs: ['p'], channels: { web: { pack: 'p', flow: 'echo' } } } },
  });
  ({ app, url } = await startApp({ config: natsAppConfig(bundle, ns, { GREENTIC_SYNC_TIMEOUT_MS: 1 }) }));
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await app?.close();
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
