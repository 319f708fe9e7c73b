import { describe, expect, it } from 'vitest';
import { fakeChannel } from '../../test/support/fakes/channel-context.js';
import type { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { EgressDispatcher } from './egress-dispatcher.service.js';
import { InProcessBus } from './in-process.bus.js';
import type { EgressMessage } from './message-envelope.js';
import { EgressError, type MessagingProvider } from './providers/messaging-provider.js';
import type { ProviderRegistry } from './providers/provider-registry.service.js';

const SUBJECT = 'greentic.messaging.egress.dev.acme.default.main';

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

function egress(id: string): EgressMessage {
  return {
    id,
    inReplyTo: id,
    tenant: 'acme',
    env: 'dev',
    team: 'default',
    channel: 'main',
    provider: 'x',
    conversationId: 'c',
    userId: 'u',
    sessionKey: 'k',
    replies: [{ text: 'hi' }],
    status: 'completed',
    timestamp: new Date().toISOString(),
  };
}

async function dispatcher(send: MessagingProvider['send']) {
  const bus = new InProcessBus();
  const registry = { resolveChannel: () => fakeChannel('x') } as unknown as BundleRegistry;
  const providers = {
    get: () => ({ id: 'x', ingress: async () => ({ messages: [] }), send }),
  } as unknown as ProviderRegistry;
  const d = new EgressDispatcher(bus, registry, providers);
  await d.onApplicationBootstrap();
  const dlq: unknown[] = [];
  await bus.subscribe('greentic.messaging.dlq.>', async (m) => void dlq.push(m.data));
  return { bus, dlq };
}

describe('EgressDispatcher retry semantics', () => {
  it('dead-letters a non-retryable failure at once, without another attempt', async () => {
    let calls = 0;
    const { bus, dlq } = await dispatcher(async () => {
      calls++;
      throw new EgressError('x', 'answered 400', false, undefined, 400);
    });
    const msg = egress('m1');
    await bus.publish(SUBJECT, msg);
    await until(() => dlq.length > 0);
    await bus.close();
    expect(calls).toBe(1);
    expect(dlq).toEqual([
      { subject: SUBJECT, error: { code: 'egress_failed', message: 'x: answered 400' }, data: msg },
    ]);
  });

  it('retries a 429 after its Retry-After, then delivers', async () => {
    const at: number[] = [];
    const { bus, dlq } = await dispatcher(async () => {
      at.push(Date.now());
      if (at.length === 1) throw new EgressError('x', 'answered 429', true, 300, 429);
    });
    await bus.publish(SUBJECT, egress('m2'));
    await until(() => at.length >= 2);
    await bus.close();
    expect(at).toHaveLength(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(300);
    expect(dlq).toEqual([]);
  });
});
