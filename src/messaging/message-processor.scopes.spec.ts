import { Test, type TestingModule } from '@nestjs/testing';
import { MetricService } from 'nestjs-otel';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenancyMismatchError } from '../common/errors.js';
import { RunnerConfigModule } from '../config/config.module.js';
import { validateRunnerConfig } from '../config/runner-config.js';
import { COMPONENT_RUNTIME, type ComponentRuntime } from '../core/component-runtime.js';
import { MESSAGE_BUS } from '../core/message-bus.js';
import { SESSION_STORE } from '../core/session-store.js';
import { FlowExecutorService } from '../flows/flow-executor.service.js';
import { FlowRouter } from '../packs/flow-router.service.js';
import { FLOW_RUNNER } from '../flows/flow-run.types.js';
import { InflightWork } from './inflight-work.js';
import { ReplyWaiter } from './reply-waiter.service.js';
import { MemorySessionStore } from '../sessions/memory-session.store.js';
import { TenantSessions } from '../sessions/tenant-sessions.service.js';
import { BundleRegistry } from '../tenancy/bundle-registry.service.js';
import { parseBundle } from '../tenancy/bundle.loader.js';
import { TenancyModule } from '../tenancy/tenancy.module.js';
import { TenantScopes } from '../tenancy/tenant-scopes.service.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import { MessageProcessor } from './message-processor.service.js';

const bundle = parseBundle(
  `
tenants:
  a:
    packs: [{ id: p, source: file:./p }]
    envs: { dev: { teams: { default: { channels: { web: { provider: webhook, pack: p, flow: f } } } } } }
  b:
    packs: [{ id: p, source: file:./p }]
    envs: { dev: { teams: { default: { channels: { web: { provider: webhook, pack: p, flow: f } } } } } }
`,
  '/x/bundle.yaml',
);

const invoked: string[] = [];
const runtime: ComponentRuntime = {
  kind: 'recording',
  prepare: () => Promise.reject(new Error('not used')),
  invoke: (tenant) => {
    invoked.push(tenant.tenantId);
    return Promise.resolve({});
  },
  close: () => Promise.resolve(),
};

/** MessageProcessor and its tenant-bound facades resolved per tenant through Nest, as the runner does. */
describe('MessageProcessor per tenant (TenantScopes)', () => {
  let app: TestingModule;
  let scopes: TenantScopes;
  let registry: BundleRegistry;
  const channel = (tenant: string) =>
    registry.resolveChannel({ tenant, env: 'dev', team: 'default', channel: 'web' });

  beforeAll(async () => {
    app = await Test.createTestingModule({
      imports: [RunnerConfigModule.forRoot(validateRunnerConfig({}), { bundle }), TenancyModule],
      providers: [
        MessageProcessor,
        TenantSessions,
        TenantComponents,
        FlowExecutorService,
        { provide: FLOW_RUNNER, useExisting: FlowExecutorService },
        InflightWork,
        ReplyWaiter,
        { provide: SESSION_STORE, useValue: new MemorySessionStore() },
        { provide: COMPONENT_RUNTIME, useValue: runtime },
        { provide: MESSAGE_BUS, useValue: {} },
        { provide: FlowRouter, useValue: {} },
        { provide: MetricService, useValue: new MetricService() },
      ],
    }).compile();
    scopes = app.get(TenantScopes);
    registry = app.get(BundleRegistry);
  });
  afterAll(() => app.close());

  it('builds one processor per tenant, bound to it, and hands the same one out on every message', async () => {
    const a = channel('a').tenant;
    const b = channel('b').tenant;
    const pa = await scopes.get(a, MessageProcessor);
    const pb = await scopes.get(b, MessageProcessor);
    expect(pa).not.toBe(pb);
    expect(pa.tenant).toBe(a);
    expect(pb.tenant).toBe(b);
    expect(await scopes.get(a, MessageProcessor)).toBe(pa);
    // The facades of one tenant are shared by its services, and are another tenant's nowhere.
    const sa = await scopes.get(a, TenantSessions);
    expect(sa.tenant).toBe(a);
    expect(await scopes.get(b, TenantSessions)).not.toBe(sa);
  });

  it("refuses a channel of another tenant in a tenant's processor", async () => {
    const pa = await scopes.get(channel('a').tenant, MessageProcessor);
    const env = {
      id: 'm-1',
      tenant: 'b',
      env: 'dev',
      team: 'default',
      channel: 'web',
      provider: 'webhook',
      conversationId: 'c',
      userId: 'u',
      sessionKey: 'b:webhook:c:u',
      text: 'hi',
      attachments: [],
      timestamp: new Date().toISOString(),
    };
    await expect(pa.process(env, channel('b'))).rejects.toBeInstanceOf(TenancyMismatchError);
  });

  it("calls components in the tenant's own instances only", async () => {
    invoked.length = 0;
    const ca = await scopes.get(channel('a').tenant, TenantComponents);
    const cb = await scopes.get(channel('b').tenant, TenantComponents);
    const call = {
      component: {
        name: 'c',
        version: '1',
        digest: 'd',
        world: 'greentic:component@0.6.0' as const,
        exports: [],
        operations: [],
      },
      input: {},
      ctx: { flowId: 'f', nodeId: 'n', messageId: 'm', userId: 'u', sessionKey: 'k', text: '' },
    };
    await ca.invoke(call);
    await cb.invoke(call);
    await ca.invoke(call);
    expect(invoked).toEqual(['a', 'b', 'a']);
  });
});
