import type { ModuleRef } from '@nestjs/core';
import { describe, expect, it } from 'vitest';
import { ComponentMemoryExceededError, ComponentTimeoutError } from '../common/errors.js';
import type { BusHandler, MessageBus, PublishAck } from '../core/message-bus.js';
import { COMPONENT_RUNTIME, type ComponentCall, type ComponentRuntime } from '../core/component-runtime.js';
import { PUBLISHED_AT_HEADER, RunnerInstrumentation } from './instrumentation.service.js';
import { LabelGuard, type RunnerMetrics } from './runner-metrics.js';

function recorder() {
  const calls: { name: string; value: number; attrs: Record<string, unknown> }[] = [];
  const inst = (name: string) => ({
    add: (value: number, attrs: Record<string, unknown> = {}) => calls.push({ name, value, attrs }),
    record: (value: number, attrs: Record<string, unknown> = {}) => calls.push({ name, value, attrs }),
  });
  const metrics = {
    labels: new LabelGuard(),
    messagesIn: inst('in'),
    messagesOut: inst('out'),
    nodeDuration: inst('node'),
    componentDuration: inst('component'),
    componentTimeouts: inst('timeouts'),
    componentMemoryKills: inst('memoryKills'),
    sessionStoreDuration: inst('session'),
    busLag: inst('lag'),
    packReloads: inst('reloads'),
    gauge: () => ({ addCallback: () => undefined }),
    metrics: { getObservableCounter: () => ({ addCallback: () => undefined }) },
  } as unknown as RunnerMetrics;
  return { calls, metrics };
}

class FakeBus implements MessageBus {
  readonly kind = 'fake';
  readonly published: { subject: string; headers: Record<string, string> }[] = [];
  handlers: { pattern: string; handler: BusHandler; queue?: string }[] = [];
  async publish(
    subject: string,
    _data: unknown,
    opts: { headers?: Record<string, string> } = {},
  ): Promise<PublishAck> {
    this.published.push({ subject, headers: opts.headers ?? {} });
    return { duplicate: false };
  }
  async subscribe<T>(pattern: string, handler: BusHandler<T>, opts: { queue?: string } = {}) {
    this.handlers.push({
      pattern,
      handler: handler as BusHandler,
      ...(opts.queue ? { queue: opts.queue } : {}),
    });
    return { unsubscribe: async () => undefined };
  }
  async health() {
    return { up: true, details: {} };
  }
  async close(): Promise<void> {}
}

const call = (name: string): ComponentCall => ({
  component: {
    name,
    version: '1',
    digest: 'd',
    world: 'greentic:component@0.1.0',
    exports: [],
    operations: [],
  },
  operation: 'execute',
  input: {},
  ctx: { flowId: 'f', nodeId: 'n', messageId: 'm', userId: 'u', sessionKey: 's', text: '' },
});

describe('LabelGuard', () => {
  it('reports values past the per-label cap as other, and keeps known ones', () => {
    const g = new LabelGuard(2);
    expect(g.bound({ tenant: 'a', outcome: 'ok' })).toEqual({ tenant: 'a', outcome: 'ok' });
    expect(g.bound({ tenant: 'b', outcome: 'ok' })).toEqual({ tenant: 'b', outcome: 'ok' });
    expect(g.bound({ tenant: 'c', outcome: 'ok' })).toEqual({ tenant: 'other', outcome: 'ok' });
    expect(g.bound({ tenant: 'a', outcome: 'ok' })).toEqual({ tenant: 'a', outcome: 'ok' });
  });

  it('binds a label set once per owner and key, through the same cap', () => {
    const g = new LabelGuard(1);
    const owner = {};
    let made = 0;
    const make = (tenant: string) => () => (made++, { tenant, outcome: 'ok' });
    const first = g.boundFor(owner, 'ok', make('a'));
    expect(g.boundFor(owner, 'ok', make('a'))).toBe(first);
    expect(made).toBe(1);
    expect(first).toEqual({ tenant: 'a', outcome: 'ok' });
    // Another owner is another set; past the cap its tenant is reported as other.
    expect(g.boundFor({}, 'ok', make('b'))).toEqual({ tenant: 'other', outcome: 'ok' });
    // Another sub-key asks again (and the guard's own memo hands back the same frozen set).
    expect(g.boundFor(owner, 'ok', make('a'), 'x')).toBe(first);
    expect(made).toBe(3);
  });
});

describe('RunnerInstrumentation', () => {
  it('counts component timeouts and memory kills, and times every call with its outcome', async () => {
    const { calls, metrics } = recorder();
    let next: Error | null = new ComponentTimeoutError('slow');
    const runtime: ComponentRuntime = {
      kind: 'fake',
      prepare: async () => call('x').component,
      invoke: async () => {
        if (next) throw next;
        return 'ok';
      },
      close: async () => undefined,
    };
    const ref = {
      get: (t: unknown) => (t === COMPONENT_RUNTIME ? runtime : undefined),
    } as unknown as ModuleRef;
    const instr = new RunnerInstrumentation(ref, metrics);
    instr.onModuleInit();
    const tenant = { tenantId: 'acme', envId: 'dev' };
    await expect(runtime.invoke(tenant, call('slowpoke'))).rejects.toBeInstanceOf(ComponentTimeoutError);
    next = new ComponentMemoryExceededError('big');
    await expect(runtime.invoke(tenant, call('hog'))).rejects.toBeInstanceOf(ComponentMemoryExceededError);
    next = null;
    await expect(runtime.invoke(tenant, call('fine'))).resolves.toBe('ok');
    expect(calls.filter((c) => c.name === 'timeouts').map((c) => c.attrs)).toEqual([
      { tenant: 'acme', component: 'slowpoke' },
    ]);
    expect(calls.filter((c) => c.name === 'memoryKills').map((c) => c.attrs)).toEqual([
      { tenant: 'acme', component: 'hog' },
    ]);
    expect(calls.filter((c) => c.name === 'component').map((c) => c.attrs['outcome'])).toEqual([
      'timeout',
      'memory',
      'ok',
    ]);
  });

  it('stamps publishes for the lag histogram and counts egress deliveries by outcome', async () => {
    const { calls, metrics } = recorder();
    const bus = new FakeBus();
    const instr = new RunnerInstrumentation({ get: () => undefined } as unknown as ModuleRef, metrics, bus);
    await bus.publish('greentic.messaging.egress.dev.acme.default.web', {}, { headers: { keep: 'me' } });
    expect(bus.published[0]!.headers['keep']).toBe('me');
    expect(Number(bus.published[0]!.headers[PUBLISHED_AT_HEADER])).toBeGreaterThan(0);

    let fail = false;
    await bus.subscribe(
      'greentic.messaging.egress.>',
      async () => {
        expect(instr.inflight.busHandlers).toBe(1);
        if (fail) throw new Error('channel down');
      },
      { queue: 'greentic-egress' },
    );
    const deliver = bus.handlers[0]!.handler;
    const msg = {
      subject: 'greentic.messaging.egress.dev.acme.default.web',
      data: {},
      headers: { [PUBLISHED_AT_HEADER]: String(Date.now()) },
      deliveryCount: 1,
    };
    await deliver(msg);
    fail = true;
    await expect(deliver(msg)).rejects.toThrow('channel down');
    expect(instr.inflight.busHandlers).toBe(0);
    expect(calls.filter((c) => c.name === 'out').map((c) => c.attrs)).toEqual([
      { tenant: 'acme', channel: 'web', outcome: 'delivered' },
      { tenant: 'acme', channel: 'web', outcome: 'failed' },
    ]);
    expect(calls.filter((c) => c.name === 'lag').map((c) => c.attrs)).toEqual([
      { direction: 'egress' },
      { direction: 'egress' },
    ]);
  });
});
