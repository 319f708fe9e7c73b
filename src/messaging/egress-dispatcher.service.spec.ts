import { describe, expect, it } from 'vitest';
import { fakeChannel } from '../../test/support/fakes/channel-context.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import {
  DEFAULT_LIMITS,
  type Bundle,
  type ChannelBinding,
  type DeliveryMode,
} from '../tenancy/bundle.types.js';
import { EgressDispatcher, egressRoutes } from './egress-dispatcher.service.js';
import { InProcessBus } from './in-process.bus.js';
import { BusContext } from './bus.context.js';
import { BusTransport } from './bus.transport.js';
import { EGRESS_CONSUMER, EGRESS_ROUTES, EgressController } from './egress.controller.js';
import type {
  BusHandler,
  BusSubscription,
  MessageBus,
  PublishAck,
  SubscribeOptions,
} from '../core/message-bus.js';
import { type EgressMessage } from '../core/message-envelope.js';
import { egressSubject, parseSubject, REPLAY_HEADER, subjectPattern } from '../core/subjects.js';
import { EgressError, type MessagingProvider } from './providers/messaging-provider.js';
import type { ProviderRegistry } from './providers/provider-registry.service.js';
import { MemoryDeliveryLedger } from '../sessions/memory-delivery-ledger.js';
import { DeliveryLimitError } from '../common/errors.js';

const SUBJECT = 'greentic.messaging.egress.dev.acme.default.main';

/**
 * Consumes egress as the application does: EgressController's handler on the bus transport, on
 * the dispatcher's routes. In front of it, what TenantGuard leaves on the delivery's context: the
 * channel its subject names, resolved through `registry` (egress uses no tenant service scope).
 */
async function consume(
  bus: MessageBus,
  d: EgressDispatcher,
  registry: Pick<BundleRegistry, 'resolveChannel'>,
): Promise<BusTransport> {
  const transport = new BusTransport(bus, { queue: 'runner', routes: { [EGRESS_ROUTES]: () => d.routes() } });
  const controller = new EgressController(d);
  const guarded = (ctx: BusContext): BusContext => {
    const p = parseSubject(ctx.getSubject())!;
    const channel = registry.resolveChannel({
      tenant: p.tenant,
      env: p.env,
      team: p.team,
      channel: p.channel,
    });
    ctx.tenancy = {
      tenant: channel.tenant,
      binding: channel.tenantBinding,
      channel,
      scope: undefined as never,
    };
    return ctx;
  };
  transport.addHandler(
    subjectPattern('egress'),
    (data: EgressMessage, ctx: BusContext) => controller.onEgress(data, guarded(ctx)),
    true,
    EGRESS_CONSUMER,
  );
  await new Promise<void>((resolve, reject) =>
    transport.listen(((err?: unknown) => (err ? reject(err) : resolve())) as () => void),
  );
  return transport;
}

async function until(cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!cond() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
}

/** A bundle from `tenant → channel id → provider`, all in env `dev`, team `default`. */
function bundle(channels: Record<string, Record<string, string>>): Bundle {
  const tenants = new Map(
    Object.entries(channels).map(([tenant, chans]) => {
      const bindings = new Map<string, ChannelBinding>(
        Object.entries(chans).map(([id, provider]) => [
          id,
          {
            id,
            provider,
            pack: 'p',
            flow: 'f',
            sessionTtlSeconds: 60,
            settings: {},
            secrets: [],
            secretRefs: {},
          },
        ]),
      );
      return [
        tenant,
        {
          id: tenant,
          envs: new Map([
            ['dev', { id: 'dev', teams: new Map([['default', { id: 'default', channels: bindings }]]) }],
          ]),
          packs: [],
          secrets: { backend: 'env', options: {} },
          limits: DEFAULT_LIMITS,
        },
      ];
    }),
  );
  return { file: '/b.yaml', dir: '/', tenants, trust: { policy: 'dev', keys: [] }, limits: DEFAULT_LIMITS };
}

function egress(id: string, tenant = 'acme', channel = 'main', sessionKey = 'k'): EgressMessage {
  return {
    id,
    inReplyTo: id,
    tenant,
    env: 'dev',
    team: 'default',
    channel,
    provider: 'x',
    conversationId: 'c',
    userId: 'u',
    sessionKey,
    replies: [{ text: 'hi' }],
    status: 'completed',
    timestamp: new Date().toISOString(),
  };
}

/** A dispatcher for tenant acme's one channel `main`, whose provider `x` sends with `send`. */
function oneChannelDispatcher(bus: MessageBus, send: MessagingProvider['send'], delivery?: DeliveryMode) {
  const channel = fakeChannel('x');
  if (delivery) channel.channel.delivery = delivery;
  const registry = {
    bundle: bundle({ acme: { main: 'x' } }),
    resolveChannel: () => channel,
  } as unknown as BundleRegistry;
  const providers = {
    get: () => ({ id: 'x', ingress: async () => ({ messages: [] }), send }),
    sends: () => true,
  } as unknown as ProviderRegistry;
  return { d: new EgressDispatcher(bus, registry, providers, new MemoryDeliveryLedger()), registry, channel };
}

async function dispatcher(send: MessagingProvider['send'], delivery?: DeliveryMode) {
  const bus = new InProcessBus();
  const { d, registry } = oneChannelDispatcher(bus, send, delivery);
  await consume(bus, d, registry);
  const dlq: unknown[] = [];
  await bus.subscribe('greentic.messaging.dlq.>', async (m) => void dlq.push(m.data));
  return { bus, dlq };
}

describe('EgressDispatcher delivery modes', () => {
  it("applies the channel's at_most_once: a reply whose call ended without an answer is not sent again", async () => {
    const calls: string[] = [];
    let attempts = 0;
    const { bus, dlq } = await dispatcher(async (_m, _ch, delivery) => {
      attempts++;
      await delivery.replies(async (_reply, _i, key) => {
        calls.push(key);
        throw new Error('socket hang up'); // no answer: it may have reached the service
      });
    }, 'at_most_once');
    await bus.publish(SUBJECT, egress('m1'));
    // The retry finds the reply marked sending: dropped (logged), acknowledged, not dead-lettered.
    await until(() => attempts === 2);
    await new Promise((r) => setTimeout(r, 300));
    await bus.close();
    expect(attempts).toBe(2);
    expect(calls).toHaveLength(1);
    expect(dlq).toEqual([]);
  });

  it('retries the same reply with the same key under at_least_once (the default)', async () => {
    const calls: string[] = [];
    const { bus } = await dispatcher(async (_m, _ch, delivery) => {
      await delivery.replies(async (_reply, _i, key) => {
        calls.push(key);
        if (calls.length === 1) throw new Error('socket hang up');
      });
    });
    await bus.publish(SUBJECT, egress('m1'));
    await until(() => calls.length === 2);
    await bus.close();
    expect(calls[1]).toBe(calls[0]);
  });

  it('does not send again the replies a replay re-publishes when the ledger has them sent (past the bus window)', async () => {
    const calls: string[] = [];
    const { bus } = await dispatcher(async (_m, _ch, delivery) => {
      await delivery.replies(async (_reply, _i, key) => void calls.push(key));
    });
    await bus.publish(SUBJECT, egress('m1'));
    await until(() => calls.length === 1);
    // The processor re-publishes the stored replies of a replayed message as a new bus message.
    await bus.publish(SUBJECT, egress('m1'), { headers: { [REPLAY_HEADER]: '1' } });
    await bus.publish(SUBJECT, egress('m2'), { headers: { [REPLAY_HEADER]: '1' } });
    await until(() => calls.length === 2);
    await new Promise((r) => setTimeout(r, 50));
    await bus.close();
    expect(calls).toHaveLength(2);
    expect(calls[1]).not.toBe(calls[0]);
  });
});

/** A dispatcher called directly (no bus), over one ledger: deliveries as the bus would hand them. */
function direct(send: MessagingProvider['send']) {
  const { d, channel } = oneChannelDispatcher(new InProcessBus(), send);
  return (m: EgressMessage, deliveryCount: number, pastLimit = false) =>
    d.deliver({ subject: SUBJECT, data: m, headers: {}, deliveryCount, pastLimit }, channel);
}

describe('EgressDispatcher past the delivery limit (a stuck predecessor replayed it)', () => {
  it('acknowledges a message a redelivery finished, without calling the provider again', async () => {
    const calls: number[] = [];
    const deliver = direct(async (_m, _ch, delivery) => {
      await delivery.replies(async (_reply, i) => void calls.push(i));
    });
    const m = { ...egress('m1'), replies: [{ text: 'a' }, { text: 'b' }] };
    await deliver(m, 1);
    // Redelivered behind the stuck message: the ledger skips both parts, and the message is finished.
    await deliver(m, 2);
    expect(calls).toEqual([0, 1]);
    await expect(deliver(m, 6, true)).resolves.toBeUndefined();
    expect(calls).toEqual([0, 1]);
  });

  it('refuses (max_deliveries, permanent) a message no redelivery finished, without calling the provider', async () => {
    const calls: number[] = [];
    let fail = true;
    const deliver = direct(async (_m, _ch, delivery) => {
      await delivery.replies(async (_reply, i) => {
        calls.push(i);
        if (i === 1 && fail) throw new EgressError('x', 'socket hang up', true);
      });
    });
    const m = { ...egress('m2'), replies: [{ text: 'a' }, { text: 'b' }] };
    await expect(deliver(m, 1)).rejects.toThrow('socket hang up');
    await expect(deliver(m, 2)).rejects.toThrow('socket hang up');
    expect(calls).toEqual([0, 1, 1]);
    const refused = deliver(m, 6, true);
    await expect(refused).rejects.toBeInstanceOf(DeliveryLimitError);
    await expect(refused).rejects.toMatchObject({ code: 'max_deliveries', details: { retryable: false } });
    // A first delivery that finished records nothing more: only redeliveries can pass the limit.
    fail = false;
    const once = { ...egress('m3'), replies: [{ text: 'c' }] };
    await deliver(once, 1);
    await expect(deliver(once, 6, true)).rejects.toBeInstanceOf(DeliveryLimitError);
    expect(calls).toEqual([0, 1, 1, 0]);
  });
});

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
    // The bus's own dead letter (the dispatcher rethrows a permanent error): one, after one delivery.
    await new Promise((r) => setTimeout(r, 100));
    await bus.close();
    expect(calls).toBe(1);
    expect(dlq).toEqual([
      {
        subject: SUBJECT,
        error: { code: 'egress_failed', message: 'x: answered 400' },
        deliveries: 1,
        data: msg,
      },
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

describe('egressRoutes', () => {
  it('gives a channel id used by one provider a wildcard pattern, a shared id exact subjects', () => {
    const routes = egressRoutes(
      bundle({
        acme: { web: 'webhook', chat: 'slack', tg: 'telegram' },
        globex: { web: 'webhook', chat: 'teams' },
      }),
    );
    expect(routes).toEqual([
      {
        provider: 'slack',
        queue: 'egress-slack',
        patterns: ['greentic.messaging.egress.dev.acme.default.chat'],
      },
      {
        provider: 'teams',
        queue: 'egress-teams',
        patterns: ['greentic.messaging.egress.dev.globex.default.chat'],
      },
      { provider: 'telegram', queue: 'egress-telegram', patterns: ['greentic.messaging.egress.*.*.*.tg'] },
      { provider: 'webhook', queue: 'egress-webhook', patterns: ['greentic.messaging.egress.*.*.*.web'] },
    ]);
  });

  it('lists only the providers the bundle uses', () => {
    expect(egressRoutes(bundle({ acme: {} }))).toEqual([]);
    expect(egressRoutes(bundle({ acme: { a: 'webhook', b: 'webhook' } }))).toEqual([
      {
        provider: 'webhook',
        queue: 'egress-webhook',
        patterns: ['greentic.messaging.egress.*.*.*.a', 'greentic.messaging.egress.*.*.*.b'],
      },
    ]);
  });

  it('leaves out channels whose provider has nothing to send (a webhook without callback_url)', () => {
    const b = bundle({ acme: { a: 'webhook', b: 'webhook', c: 'slack' } });
    const routes = egressRoutes(b, (ch) => ch.id !== 'a' && ch.provider !== 'slack');
    expect(routes).toEqual([
      { provider: 'webhook', queue: 'egress-webhook', patterns: ['greentic.messaging.egress.*.*.*.b'] },
    ]);
    expect(egressRoutes(b, () => false)).toEqual([]);
  });
});

/** Records subscriptions and lets a test deliver to them. */
class RecordingBus implements MessageBus {
  readonly kind = 'recording';
  readonly subs: { pattern: string; handler: BusHandler; opts?: SubscribeOptions }[] = [];
  readonly published: { subject: string; data: unknown }[] = [];
  async publish(subject: string, data: unknown): Promise<PublishAck> {
    this.published.push({ subject, data });
    return { duplicate: false };
  }
  async subscribe<T>(
    pattern: string,
    handler: BusHandler<T>,
    opts?: SubscribeOptions,
  ): Promise<BusSubscription> {
    const entry = { pattern, handler: handler as BusHandler, opts };
    this.subs.push(entry);
    return { unsubscribe: async () => void this.subs.splice(this.subs.indexOf(entry), 1) };
  }
  async health() {
    return { up: true, details: {} };
  }
  async close(): Promise<void> {}
}

describe('EgressDispatcher: a consumer per provider', () => {
  const twoProviders = () =>
    new BundleRegistry(bundle({ acme: { web: 'webhook', chat: 'slack' }, globex: { chat: 'webhook' } }));

  function providers(send: (provider: string, m: EgressMessage) => Promise<void>): ProviderRegistry {
    return {
      get: (id: string) => ({
        id,
        ingress: async () => ({ messages: [] }),
        send: (m: EgressMessage) => send(id, m),
      }),
      sends: () => true,
    } as unknown as ProviderRegistry;
  }

  it("subscribes each provider to its channels' subjects under its own queue, and stops them all", async () => {
    const bus = new RecordingBus();
    const registry = twoProviders();
    const d = new EgressDispatcher(
      bus,
      registry,
      providers(async () => undefined),
      new MemoryDeliveryLedger(),
    );
    const transport = await consume(bus, d, registry);
    expect(bus.subs.map((s) => [s.pattern, s.opts])).toEqual([
      [
        'greentic.messaging.egress.dev.acme.default.chat',
        { queue: 'egress-slack', maxDeliver: 5, replaysPastLimit: true },
      ],
      [
        'greentic.messaging.egress.*.*.*.web',
        { queue: 'egress-webhook', maxDeliver: 5, replaysPastLimit: true },
      ],
      [
        'greentic.messaging.egress.dev.globex.default.chat',
        { queue: 'egress-webhook', maxDeliver: 5, replaysPastLimit: true },
      ],
    ]);
    await transport.close();
    expect(bus.subs).toEqual([]);
  });

  it("sends each reply once, to its channel's provider, while another provider keeps failing", async () => {
    const bus = new InProcessBus();
    const sent: string[] = [];
    let slackAttempts = 0;
    const registry = twoProviders();
    const d = new EgressDispatcher(
      bus,
      registry,
      providers(async (provider, m) => {
        if (provider === 'slack') {
          slackAttempts++;
          throw new EgressError('slack', 'answered 429', true, 400, 429);
        }
        sent.push(`${provider}:${m.tenant}:${m.id}`);
      }),
      new MemoryDeliveryLedger(),
    );
    const transport = await consume(bus, d, registry);
    await bus.publish(egressSubject('dev', 'acme', 'default', 'chat'), egress('s1', 'acme', 'chat'));
    const t0 = Date.now();
    await bus.publish(egressSubject('dev', 'acme', 'default', 'web'), egress('w1', 'acme', 'web'));
    await bus.publish(egressSubject('dev', 'globex', 'default', 'chat'), egress('g1', 'globex', 'chat'));
    await until(() => sent.length === 2);
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(sent.sort()).toEqual(['webhook:acme:w1', 'webhook:globex:g1']);
    expect(slackAttempts).toBeGreaterThanOrEqual(1);
    await transport.close();
    await bus.close();
  });
});

describe('EgressController: the subject is the authority on tenancy', () => {
  it("refuses a reply on acme's subject whose body or tenancy header claims globex: dead-lettered, never sent", async () => {
    const bus = new InProcessBus();
    const registry = new BundleRegistry(bundle({ acme: { chat: 'webhook' }, globex: { chat: 'webhook' } }));
    const sent: string[] = [];
    const providers = {
      get: (id: string) => ({
        id,
        ingress: async () => ({ messages: [] }),
        send: async (m: EgressMessage, ch: { tenant: { tenantId: string } }) =>
          void sent.push(`${ch.tenant.tenantId}:${m.id}`),
      }),
      sends: () => true,
    } as unknown as ProviderRegistry;
    const d = new EgressDispatcher(bus, registry, providers, new MemoryDeliveryLedger());
    const transport = await consume(bus, d, registry);
    // No Nest exception filter here (in the application it rethrows the refusal as well): the bus
    // dead-letters it at once, a permanent error.
    const dlq: { id: string; code: string; message: string }[] = [];
    await bus.subscribe<{ error: { code: string; message: string }; data: EgressMessage }>(
      'greentic.messaging.dlq.>',
      async (m) => void dlq.push({ id: m.data.data.id, ...m.data.error }),
    );
    const acme = egressSubject('dev', 'acme', 'default', 'chat');
    await bus.publish(acme, egress('forged-body', 'globex', 'chat'));
    await bus.publish(acme, egress('forged-header', 'acme', 'chat'), {
      headers: { 'greentic-tenant': 'globex' },
    });
    await bus.publish(acme, egress('genuine', 'acme', 'chat'));
    await until(() => dlq.length === 2 && sent.length === 1);
    await transport.close();
    await bus.close();
    expect(sent).toEqual(['acme:genuine']);
    expect(dlq).toEqual([
      {
        id: 'forged-body',
        code: 'tenancy_mismatch',
        message: `message claims globex/dev/default/chat on subject ${acme}`,
      },
      {
        id: 'forged-header',
        code: 'tenancy_mismatch',
        message: `message claims acme/dev/default/chat (tenancy header 'globex') on subject ${acme}`,
      },
    ]);
  });
});
