import { Test } from '@nestjs/testing';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureSpec, type FixtureName } from '../../test/fixtures/fixture-paths.js';
import { ComponentError, ComponentLoadError, ComponentTrapError } from '../common/errors.js';
import type { TenantCtx } from '../core/tenant-ctx.js';
import {
  COMPONENT_RUNTIME,
  WORLD_V01,
  WORLD_V06,
  type PreparedComponent,
} from '../core/component-runtime.js';
import { JcoComponentRuntime } from './jco-component.runtime.js';
import { resetTranspileStats, TranspileCache, transpileStats } from './transpile-cache.js';
import { RunnerConfigModule } from '../config/config.module.js';
import { validateRunnerConfig } from '../config/runner-config.js';
import { PooledComponentRuntime } from './pool/pooled-component.runtime.js';
import { WasmModule } from './wasm.module.js';
import { componentCall, rejection } from '../../test/support/component-call.js';

const tenantA: TenantCtx = { tenantId: 'a', envId: 'dev' };
const tenantB: TenantCtx = { tenantId: 'b', envId: 'dev', teamId: 'support' };

const call = componentCall;

describe('JcoComponentRuntime', () => {
  // The default cache dir (shared with the fixtures), so transpiles persist between runs.
  const runtime = new JcoComponentRuntime();
  const prepared = new Map<FixtureName, PreparedComponent>();
  const prep = async (name: FixtureName) => {
    let p = prepared.get(name);
    if (!p) {
      p = await runtime.prepare(await fixtureSpec(name));
      prepared.set(name, p);
    }
    return p;
  };

  afterAll(() => runtime.close());

  describe('WAT echo (0.1 world)', () => {
    it('detects the world and answers the message text', async () => {
      const echo = await prep('echo');
      expect(echo.world).toBe(WORLD_V01);
      expect(echo.exports).toEqual(['execute']);
      expect(echo.operations).toEqual([{ name: 'execute' }]);
      expect(echo.digest).toMatch(/^[0-9a-f]{64}$/);
      expect(await runtime.invoke(tenantA, call(echo, 'execute'))).toBe('hello there');
    });

    it('round-trips mapped args as JSON', async () => {
      const echo = await prep('echo');
      const input = { q: 'Paris', days: 3, nested: [1, 'two', { three: true }], unicode: 'héllo ✓' };
      expect(await runtime.invoke(tenantA, call(echo, 'execute', input))).toEqual(input);
      expect(await runtime.invoke(tenantA, call(echo, 'execute', 'just text'))).toBe('just text');
    });

    it('grows memory for large inputs', async () => {
      const echo = await prep('echo');
      const big = 'x'.repeat(300_000);
      expect(await runtime.invoke(tenantA, call(echo, 'execute', undefined, { text: big }))).toBe(big);
    });
  });

  describe('JS components (componentize-js)', () => {
    it('0.1: upper-cases the content', async () => {
      const v01 = await prep('js-v01');
      expect(v01.world).toBe(WORLD_V01);
      expect(await runtime.invoke(tenantA, call(v01, 'execute', undefined, { text: 'héllo' }))).toBe('HÉLLO');
    });

    it('0.1: success=false becomes component_failed', async () => {
      const v01 = await prep('js-v01');
      const err = await rejection(runtime.invoke(tenantA, call(v01, 'execute', undefined, { text: '' })));
      expect(err).toBeInstanceOf(ComponentError);
      expect(err).toMatchObject({ code: 'component_failed', httpStatus: 502 });
      expect((err as Error).message).toContain('empty content');
    });

    it('0.6: describe() fills the operations', async () => {
      const v06 = await prep('js-v06');
      expect(v06.world).toBe(WORLD_V06);
      expect(v06.exports).toEqual([
        'greentic:component/component-descriptor@0.6.0',
        'greentic:component/node@0.6.0',
      ]);
      expect(v06.operations.map((op) => op.name)).toEqual(['echo', 'sum', 'fail', 'crash', 'clock']);
      expect(v06.operations[1]).toMatchObject({
        inputSchema: { type: 'object', required: ['values'] },
        outputSchema: { type: 'object' },
      });
    });

    it('0.6: invokes operations with CBOR payloads and the envelope', async () => {
      const v06 = await prep('js-v06');
      expect(await runtime.invoke(tenantA, call(v06, 'sum', { values: [1, 2, 3.5] }))).toEqual({ sum: 6.5 });
      expect(await runtime.invoke(tenantB, call(v06, 'echo', { a: [1, { b: null }], s: 'ü' }))).toEqual({
        input: { a: [1, { b: null }], s: 'ü' },
        tenant: 'b',
        flow: 'flow-1',
        step: 'node-1',
      });
    });

    it("0.6: Date.now() and crypto.getRandomValues read the host's clock and random source", async () => {
      // jco's hybrid import bindings call the shim's own lowerings where it has them: the
      // wall clock's is not used (it wrote the datetime at the wrong offsets, so Date.now() read 0).
      const v06 = await prep('js-v06');
      const before = Date.now();
      const first = (await runtime.invoke(tenantA, call(v06, 'clock', {}))) as {
        now: number;
        random: number[];
      };
      const second = (await runtime.invoke(tenantA, call(v06, 'clock', {}))) as { random: number[] };
      expect(first.now).toBeGreaterThanOrEqual(before - 1);
      expect(first.now).toBeLessThanOrEqual(Date.now() + 1);
      expect(first.random).toHaveLength(16);
      expect(first.random).not.toEqual(second.random);
      expect(await runtime.invoke(tenantA, call(v06, 'sum', { values: [1, 2] }))).toEqual({ sum: 3 });
    });

    it('0.6: a node-error becomes a ComponentError with its code', async () => {
      const v06 = await prep('js-v06');
      const fail = await rejection(runtime.invoke(tenantA, call(v06, 'fail', {})));
      expect(fail).toBeInstanceOf(ComponentError);
      expect(fail).not.toBeInstanceOf(ComponentTrapError);
      expect(fail).toMatchObject({
        code: 'upstream_unavailable',
        message: 'asked to fail',
        details: { component: 'js-v06', operation: 'fail', retryable: true },
      });
      const invalid = await rejection(runtime.invoke(tenantA, call(v06, 'sum', { values: ['x'] })));
      expect(invalid).toMatchObject({ code: 'invalid_input', details: { retryable: false } });
      // A node-error is an answer, not a trap: the instance keeps serving.
      expect(await runtime.invoke(tenantA, call(v06, 'sum', { values: [2, 2] }))).toEqual({ sum: 4 });
    });

    it('0.6: a thrown JS Error is a trap; the next call gets a fresh instance', async () => {
      const v06 = await prep('js-v06');
      const err = await rejection(runtime.invoke(tenantA, call(v06, 'crash', {})));
      expect(err).toBeInstanceOf(ComponentTrapError);
      expect(err).toMatchObject({
        code: 'component_trap',
        details: { tenant: 'a/dev/-', operation: 'crash' },
      });
      expect(await runtime.invoke(tenantA, call(v06, 'sum', { values: [1] }))).toEqual({ sum: 1 });
    });

    it('runs the demo weather component deterministically', async () => {
      const weather = await prep('weather_api');
      expect(weather.operations.map((op) => op.name)).toEqual(['forecast_weather']);
      const a = (await runtime.invoke(
        tenantA,
        call(weather, 'forecast_weather', { q: 'paris', days: 3 }),
      )) as {
        location: { name: string };
        days: number;
        summary: string;
        forecast: Array<{ day: number; high_c: number; low_c: number; condition: string }>;
      };
      expect(a.location.name).toBe('Paris');
      expect(a.days).toBe(3);
      expect(a.forecast).toHaveLength(3);
      expect(a.forecast[0]).toEqual({
        day: 1,
        high_c: expect.any(Number),
        low_c: expect.any(Number),
        condition: expect.any(String),
      });
      expect(a.summary).toContain('today');
      const b = await runtime.invoke(tenantB, call(weather, 'forecast_weather', { q: 'Paris', days: 3 }));
      expect(b).toEqual(a);
      const missing = await rejection(
        runtime.invoke(tenantA, call(weather, 'forecast_weather', { days: 2 })),
      );
      expect(missing).toMatchObject({ code: 'invalid_input' });
    });
  });

  describe('traps', () => {
    it('maps a trap to ComponentTrapError naming tenant, component and operation', async () => {
      const trap = await prep('trap');
      const err = await rejection(
        runtime.invoke(tenantB, call(trap, 'execute', undefined, { text: 'trap' })),
      );
      expect(err).toBeInstanceOf(ComponentTrapError);
      const message = (err as Error).message;
      expect(message).toContain("'trap'");
      expect(message).toContain("'execute'");
      expect(message).toContain("'b/dev/support'");
      expect(message).toContain('unreachable');
    });

    it('drops the poisoned instance: the next call succeeds in a fresh one', async () => {
      const trap = await prep('trap');
      const tenant: TenantCtx = { tenantId: 'trapper', envId: 'dev' };
      expect(await runtime.invoke(tenant, call(trap, 'execute'))).toBe(1);
      expect(await runtime.invoke(tenant, call(trap, 'execute'))).toBe(2);
      await expect(
        runtime.invoke(tenant, call(trap, 'execute', undefined, { text: 'trap' })),
      ).rejects.toBeInstanceOf(ComponentTrapError);
      // A fresh instance counts from 1 again.
      expect(await runtime.invoke(tenant, call(trap, 'execute'))).toBe(1);
      expect(await runtime.invoke(tenant, call(trap, 'execute'))).toBe(2);
    });

    it('a call waiting for the instance a concurrent call poisoned gets a fresh one', async () => {
      const trap = await prep('trap');
      const tenant: TenantCtx = { tenantId: 'racer', envId: 'dev' };
      const [trapped, next] = await Promise.allSettled([
        runtime.invoke(tenant, call(trap, 'execute', undefined, { text: 'trap' })),
        runtime.invoke(tenant, call(trap, 'execute')),
      ]);
      expect(trapped).toMatchObject({ status: 'rejected', reason: expect.any(ComponentTrapError) });
      expect(next).toEqual({ status: 'fulfilled', value: 1 });
    });
  });

  describe('loading', () => {
    it('refuses a component of neither world, listing its exports', async () => {
      const err = await rejection(runtime.prepare(await fixtureSpec('neither')));
      expect(err).toBeInstanceOf(ComponentLoadError);
      expect((err as Error).message).toBe(
        "component 'neither' implements neither greentic:component@0.1.0 (export execute) nor " +
          'greentic:component@0.6.0 (export node); it exports: add, answer',
      );
    });

    it('refuses bytes that are not a component', async () => {
      const err = await rejection(
        runtime.prepare({ name: 'junk', version: '1', bytes: new Uint8Array([1, 2, 3]) }),
      );
      expect(err).toBeInstanceOf(ComponentLoadError);
      expect((err as Error).message).toContain("component 'junk' could not be transpiled");
    });

    it('refuses a call for a component it has not prepared', async () => {
      const echo = await prep('echo');
      const stranger = { ...echo, digest: '0'.repeat(64) };
      await expect(runtime.invoke(tenantA, call(stranger, 'execute'))).rejects.toBeInstanceOf(
        ComponentLoadError,
      );
    });
  });

  describe('tenancy', () => {
    it('gives each tenant its own instance', async () => {
      const counter = await prep('counter');
      const a: TenantCtx = { tenantId: 'count-a', envId: 'dev' };
      const b: TenantCtx = { tenantId: 'count-b', envId: 'dev' };
      const seen: Array<[string, unknown]> = [];
      for (let i = 0; i < 3; i++) {
        seen.push(['a', await runtime.invoke(a, call(counter, 'execute'))]);
        seen.push(['b', await runtime.invoke(b, call(counter, 'execute'))]);
      }
      expect(seen).toEqual([
        ['a', 1],
        ['b', 1],
        ['a', 2],
        ['b', 2],
        ['a', 3],
        ['b', 3],
      ]);
      // Same tenant id, different env: another tenant key, another instance.
      expect(await runtime.invoke({ tenantId: 'count-a', envId: 'prod' }, call(counter, 'execute'))).toBe(1);
      const stats = runtime.stats() as { instancesPerTenant: Record<string, number> };
      expect(stats.instancesPerTenant['count-a/dev/-']).toBe(1);
      expect(stats.instancesPerTenant['count-b/dev/-']).toBe(1);
    });

    it('concurrent first calls of a tenant share one instance', async () => {
      const counter = await prep('counter');
      const t: TenantCtx = { tenantId: 'concurrent', envId: 'dev' };
      const results = await Promise.all([1, 2, 3, 4].map(() => runtime.invoke(t, call(counter, 'execute'))));
      expect([...results].sort()).toEqual([1, 2, 3, 4]);
    });

    it('release() drops the tenant instances', async () => {
      const counter = await prep('counter');
      const t: TenantCtx = { tenantId: 'released', envId: 'dev' };
      await runtime.invoke(t, call(counter, 'execute'));
      expect(await runtime.invoke(t, call(counter, 'execute'))).toBe(2);
      await runtime.release(t);
      expect(
        (runtime.stats() as { instancesPerTenant: Record<string, number> }).instancesPerTenant,
      ).not.toHaveProperty('released/dev/-');
      expect(await runtime.invoke(t, call(counter, 'execute'))).toBe(1);
    });
  });

  describe('host imports (greentic:host, upstream state/http/secrets)', () => {
    it('loads and describes a component that imports them; every host call answers `unavailable`', async () => {
      const upstream = await prep('js-upstream');
      expect(upstream.operations.map((o) => o.name)).toEqual([
        'count',
        'forget',
        'fetch',
        'secret',
        'whoami',
      ]);
      const session = {};
      expect(await runtime.invoke(tenantA, call(upstream, 'count', {}, { session }))).toMatchObject({
        error: { code: 'unavailable' },
      });
      expect(session).toEqual({});
      expect(await runtime.invoke(tenantA, call(upstream, 'secret', { name: 'x' }))).toEqual({
        error: 'internal',
      });
      expect(await runtime.invoke(tenantA, call(upstream, 'whoami', {}))).toMatchObject({ op: 'whoami' });
      const host = await prep('js-host');
      expect(await runtime.invoke(tenantA, call(host, 'secret', { name: 'api_key' }))).toMatchObject({
        error: { code: 'unavailable' },
      });
    });
  });
});

describe('transpile cache across runtimes', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greentic-wasm-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a second runtime (fresh process state, same cache dir) prepares without transpiling', async () => {
    const spec = await fixtureSpec('echo');
    const first = new JcoComponentRuntime({ transpileCache: new TranspileCache(dir) });
    resetTranspileStats();
    const p1 = await first.prepare(spec);
    expect(transpileStats().transpiles).toBe(1);
    await first.close();

    resetTranspileStats();
    const second = new JcoComponentRuntime({ transpileCache: new TranspileCache(dir) });
    const p2 = await second.prepare(spec);
    expect(p2).toEqual(p1);
    expect(transpileStats()).toMatchObject({ transpiles: 0, diskHits: 1 });
    expect(await second.invoke(tenantA, call(p2, 'execute'))).toBe('hello there');
    expect(second.stats()).toMatchObject({ transpiles: 0, preparedComponents: 1 });
    await second.close();
  });
});

describe('WasmModule', () => {
  it('provides the worker pool as COMPONENT_RUNTIME by default', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [RunnerConfigModule.forRoot(validateRunnerConfig({})), WasmModule.forRoot()],
    }).compile();
    const runtime = moduleRef.get(COMPONENT_RUNTIME);
    expect(runtime).toBeInstanceOf(PooledComponentRuntime);
    expect(runtime.kind).toBe('pool');
    await moduleRef.close();
  });

  it('provides the in-process jco runtime with GREENTIC_COMPONENT_RUNTIME=inprocess', async () => {
    const config = validateRunnerConfig({ GREENTIC_COMPONENT_RUNTIME: 'inprocess' });
    const moduleRef = await Test.createTestingModule({
      imports: [RunnerConfigModule.forRoot(config), WasmModule.forRoot()],
    }).compile();
    const runtime = moduleRef.get(COMPONENT_RUNTIME);
    expect(runtime).toBeInstanceOf(JcoComponentRuntime);
    expect(runtime.kind).toBe('jco-inprocess');
    await moduleRef.close();
  });
});
