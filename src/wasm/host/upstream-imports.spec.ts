import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { fixtureSpec } from '../../../test/fixtures/fixture-paths.js';
import { ComponentError } from '../../common/errors.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';
import type { ComponentCallContext, PreparedComponent } from '../../core/component-runtime.js';
import { PooledComponentRuntime } from '../pool/pooled-component.runtime.js';
import { providedImport } from '../pool/component-loader.js';
import { STATE_NOT_FOUND, STATE_STORE_ROOT, stateStoreOp } from './component-state.js';
import { isUpstreamImport } from './upstream-imports.js';

const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s));

describe('upstream imports the runner provides', () => {
  it('accepts the three host interfaces, control and the types-only packages, at their versions', () => {
    for (const name of [
      'greentic:state/state-store',
      'greentic:state/state-store@1.0.0',
      'greentic:http/http-client@1.0.0',
      'greentic:secrets-store/secrets-store@1.0.0',
      'greentic:component/control@0.6.0',
      'greentic:types-core/core@0.6.0',
      'greentic:interfaces-types/types',
      'wasi:filesystem/types@0.2.3',
      'wasi:cli/environment@0.2.9',
    ]) {
      expect(providedImport(name), name).toBe(true);
    }
    for (const name of [
      'greentic:state/state-store@2.0.0',
      'greentic:http/http-client@1.1.0',
      'greentic:telemetry/logger@1.0.0',
      'wasi:cli/environment@0.3.0',
    ]) {
      expect(providedImport(name), name).toBe(false);
    }
    expect(isUpstreamImport('greentic:host/state')).toBe(false);
  });
});

describe('state-store on the session data', () => {
  it('reads what was written, `not_found` on a miss, deletes with an ack', () => {
    const session: Record<string, unknown> = {};
    expect(stateStoreOp(session, 'c', 'read', ['k'])).toEqual({
      tag: 'err',
      val: { code: STATE_NOT_FOUND, message: "state key 'k' not found" },
    });
    expect(stateStoreOp(session, 'c', 'write', ['k', bytes('\u0000blob')])).toEqual({ tag: 'ok', val: 'ok' });
    expect(stateStoreOp(session, 'c', 'read', ['k'])).toEqual({ tag: 'ok', val: bytes('\u0000blob') });
    // Another component of the same session has its own keys.
    expect(stateStoreOp(session, 'other', 'read', ['k'])).toMatchObject({ val: { code: STATE_NOT_FOUND } });
    expect(session).toEqual({
      [STATE_STORE_ROOT]: { c: { k: Buffer.from('\u0000blob').toString('base64') } },
    });
    expect(stateStoreOp(session, 'c', 'delete', ['k'])).toEqual({ tag: 'ok', val: 'ok' });
    expect(stateStoreOp(session, 'c', 'delete', ['k'])).toEqual({ tag: 'ok', val: 'ok' });
    expect(stateStoreOp(session, 'c', 'read', ['k'])).toMatchObject({ val: { code: STATE_NOT_FOUND } });
  });

  it('refuses bad keys, non-bytes, oversize values and calls without a session', () => {
    const session: Record<string, unknown> = {};
    const limits = { maxKeyLength: 8, maxValueBytes: 16, maxTotalBytes: 24 };
    expect(stateStoreOp(session, 'c', 'read', [''], limits)).toMatchObject({ val: { code: 'invalid' } });
    expect(stateStoreOp(session, 'c', 'read', ['__proto__'], limits)).toMatchObject({
      val: { code: 'invalid' },
    });
    expect(stateStoreOp(session, 'c', 'write', ['k', 'text'], limits)).toMatchObject({
      val: { code: 'invalid' },
    });
    expect(stateStoreOp(session, 'c', 'write', ['k', new Uint8Array(17)], limits)).toMatchObject({
      val: { code: 'too-large' },
    });
    expect(stateStoreOp(session, 'c', 'write', ['a', new Uint8Array(12)], limits)).toMatchObject({
      tag: 'ok',
    });
    expect(stateStoreOp(session, 'c', 'write', ['b', new Uint8Array(12)], limits)).toMatchObject({
      val: { code: 'too-large' },
    });
    expect(stateStoreOp(undefined, 'c', 'read', ['k'])).toMatchObject({ val: { code: 'unavailable' } });
  });
});

describe('a component built against upstream 0.6.0 (js-upstream) in the pool', () => {
  let runtime: PooledComponentRuntime;
  let component: PreparedComponent;
  const tenant: TenantCtx = { tenantId: 'acme', envId: 'dev' };
  const ctx = (over: Partial<ComponentCallContext> = {}): ComponentCallContext => ({
    flowId: 'f',
    nodeId: 'n',
    messageId: 'm',
    userId: 'u',
    sessionKey: 'acme:webhook:c:u',
    text: '',
    ...over,
  });

  beforeAll(async () => {
    runtime = new PooledComponentRuntime({
      settings: { deadlineMs: 5_000 },
      host: { secrets: { get: async (_t, name) => (name === 'token' ? 'tok-123' : undefined) } },
    });
    component = await runtime.prepare(await fixtureSpec('js-upstream'));
  });
  afterAll(() => runtime.close());

  it("lists the operations of upstream's node.describe(), with their summaries", () => {
    expect(component.world).toBe('greentic:component@0.6.0');
    expect(component.operations.map((o) => [o.name, o.summary])).toEqual([
      ['count', 'Adds one to a counter kept in state-store (per session)'],
      ['forget', 'Deletes the counter'],
      ['fetch', 'Sends an HTTP request through http-client'],
      ['secret', 'Reads a secret through secrets-store'],
      ['whoami', 'Reports the operation and the envelope it was called with'],
    ]);
    expect(component.operations[0]!.inputSchema).toEqual({ type: 'object' });
  });

  it("calls the operation named, else the manifest's default_operation, never a made-up one", async () => {
    const named = await runtime.invoke(tenant, {
      component,
      operation: 'whoami',
      input: { x: 1 },
      ctx: ctx({ locale: 'de-CH' }),
    });
    expect(named).toEqual({
      op: 'whoami',
      tenant: 'acme',
      env: 'dev',
      i18n: 'de-CH',
      flow: 'f',
      step: 'n',
      component: 'js-upstream',
      input: { x: 1 },
    });
    const withDefault = await runtime.prepare({
      ...(await fixtureSpec('js-upstream')),
      defaultOperation: 'whoami',
    });
    expect(withDefault.defaultOperation).toBe('whoami');
    expect(await runtime.invoke(tenant, { component: withDefault, input: {}, ctx: ctx() })).toMatchObject({
      op: 'whoami',
      i18n: 'en',
    });
    const refused = await runtime
      .invoke(tenant, { component, input: {}, ctx: ctx() })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ComponentError);
    expect(refused).toMatchObject({ code: 'operation_required', httpStatus: 400 });
  });

  it("ignores a tenant-ctx the guest passes: state stays in the caller's session, and the claim is logged", async () => {
    const warn = vi.spyOn(Logger.prototype, 'warn');
    const session: Record<string, unknown> = {};
    expect(
      await runtime.invoke(tenant, { component, operation: 'count', input: {}, ctx: ctx({ session }) }),
    ).toEqual({ count: 1, ack: 'ok' });
    expect(
      await runtime.invoke(tenant, {
        component,
        operation: 'count',
        input: { as_tenant: 'globex' },
        ctx: ctx({ session }),
      }),
    ).toEqual({ count: 2, ack: 'ok' });
    const claim = warn.mock.calls.find(([fields]) => (fields as { claimedTenant?: string })?.claimedTenant);
    warn.mockRestore();
    expect(claim?.[0]).toMatchObject({ tenant: 'acme', claimedTenant: 'globex', component: 'js-upstream' });
    expect(session).toEqual({
      [STATE_STORE_ROOT]: { 'js-upstream': { count: Buffer.from('2').toString('base64') } },
    });
  });

  it('secrets-store: bytes for an allowed key, none for an allowed unset one, `denied` outside the list', async () => {
    const secret = (name: string) =>
      runtime.invoke(tenant, {
        component,
        operation: 'secret',
        input: { name },
        ctx: ctx({ allowedSecrets: ['token', 'unset'] }),
      });
    expect(await secret('token')).toEqual({ value: 'tok-123' });
    expect(await secret('unset')).toEqual({ value: null });
    expect(await secret('admin_token')).toEqual({ error: 'denied' });
    expect(await secret('')).toEqual({ error: 'invalid-key' });
  });

  it('http-client: no allow-list, no request', async () => {
    expect(
      await runtime.invoke(tenant, {
        component,
        operation: 'fetch',
        input: { url: 'http://127.0.0.1:9/' },
        ctx: ctx(),
      }),
    ).toMatchObject({ error: { code: 'denied' } });
  });
});
