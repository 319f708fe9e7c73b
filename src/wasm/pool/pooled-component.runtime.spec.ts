import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixtureSpec, type FixtureName } from '../../../test/fixtures/fixture-paths.js';
import {
  ComponentBusyError,
  ComponentError,
  ComponentLoadError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
  ComponentTrapError,
} from '../../common/errors.js';
import type { TenantCtx } from '../../core/tenant-ctx.js';
import { WORLD_V01, WORLD_V06, type PreparedComponent } from '../../core/component-runtime.js';
import { resetTranspileStats, TranspileCache, transpileStats } from '../transpile-cache.js';
import type { PoolSettings } from './pool-settings.js';
import { PooledComponentRuntime } from './pooled-component.runtime.js';
import type { TenantPoolStats } from './tenant-pool.js';
import { componentCall, rejection } from '../../../test/support/component-call.js';

const call = componentCall;

const tenant = (tenantId: string, envId = 'dev'): TenantCtx => ({ tenantId, envId });

function tenantStats(runtime: PooledComponentRuntime, id: string): TenantPoolStats {
  const s = runtime.tenantStats()[id];
  if (!s) throw new Error(`no pool for tenant ${id}`);
  return s;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

describe.each<PoolSettings['channel']>(['atomics', 'message'])(
  'PooledComponentRuntime (%s channel)',
  (channel) => {
    const runtime = new PooledComponentRuntime({
      settings: { channel, deadlineMs: 5_000, memoryMb: 64, minWorkers: 1, maxWorkers: 2 },
      tenantLimits: (id) =>
        id === 'slow'
          ? { componentDeadlineMs: 300 }
          : id === 'tight'
            ? { componentPoolMax: 1, componentQueueSize: 1 }
            : id === 'bomb'
              ? { componentMemoryMb: 32 }
              : undefined,
    });
    const prepared = new Map<FixtureName, Promise<PreparedComponent>>();
    const prep = (name: FixtureName): Promise<PreparedComponent> => {
      let p = prepared.get(name);
      if (!p) {
        p = fixtureSpec(name).then((spec) => runtime.prepare(spec));
        prepared.set(name, p);
      }
      return p;
    };

    afterAll(() => runtime.close());

    describe('calls', () => {
      it('runs the WAT echo in a worker and round-trips JSON args', async () => {
        const echo = await prep('echo');
        expect(echo).toMatchObject({
          world: WORLD_V01,
          exports: ['execute'],
          operations: [{ name: 'execute' }],
        });
        expect(await runtime.invoke(tenant('a'), call(echo))).toBe('hello there');
        const input = { q: 'Paris', days: 3, nested: [1, 'two', { three: true }], unicode: 'héllo ✓' };
        expect(await runtime.invoke(tenant('a'), call(echo, 'execute', input))).toEqual(input);
        const s = tenantStats(runtime, 'a');
        expect(s.workers).toBeGreaterThanOrEqual(1);
        expect(s.instances).toEqual({ 'a/dev/-': 1 });
      });

      it('carries inputs larger than a slot (through the port)', async () => {
        const echo = await prep('echo');
        const big = 'x'.repeat(300_000);
        expect(await runtime.invoke(tenant('a'), call(echo, 'execute', undefined, { text: big }))).toBe(big);
      });

      it('runs both worlds: 0.1 and 0.6 JS components, with 0.6 operations read at prepare', async () => {
        const [v01, v06] = await Promise.all([prep('js-v01'), prep('js-v06')]);
        expect(v01.world).toBe(WORLD_V01);
        expect(v06.world).toBe(WORLD_V06);
        expect(v06.operations.map((op) => op.name)).toEqual(['echo', 'sum', 'fail', 'crash', 'clock']);
        expect(v06.operations[1]).toMatchObject({ inputSchema: { required: ['values'] } });
        expect(await runtime.invoke(tenant('a'), call(v01, 'execute', undefined, { text: 'héllo' }))).toBe(
          'HÉLLO',
        );
        expect(await runtime.invoke(tenant('b'), call(v06, 'echo', { a: [1, { b: null }], n: 5n }))).toEqual({
          input: { a: [1, { b: null }], n: 5 },
          tenant: 'b',
          flow: 'flow-1',
          step: 'node-1',
        });
        const failed = await rejection(runtime.invoke(tenant('a'), call(v06, 'fail', {})));
        expect(failed).toBeInstanceOf(ComponentError);
        expect(failed).not.toBeInstanceOf(ComponentTrapError);
        expect(failed).toMatchObject({ code: 'upstream_unavailable', details: { retryable: true } });
      });

      it("gives a worker's component the host's clock and random bytes (Date.now(), crypto)", async () => {
        const v06 = await prep('js-v06');
        const before = Date.now();
        const out = (await runtime.invoke(tenant('a'), call(v06, 'clock', {}))) as {
          now: number;
          random: number[];
        };
        expect(out.now).toBeGreaterThanOrEqual(before - 1);
        expect(out.now).toBeLessThanOrEqual(Date.now() + 1);
        expect(out.random).toHaveLength(16);
        expect(new Set(out.random).size).toBeGreaterThan(1);
      });

      it('refuses a component of neither world at prepare, listing its exports', async () => {
        const err = await rejection(runtime.prepare(await fixtureSpec('neither')));
        expect(err).toBeInstanceOf(ComponentLoadError);
        expect((err as Error).message).toContain('it exports: add, answer');
      });

      it('refuses a call for a component it has not prepared', async () => {
        const echo = await prep('echo');
        const stranger = { ...echo, digest: '0'.repeat(64) };
        await expect(runtime.invoke(tenant('a'), call(stranger))).rejects.toBeInstanceOf(ComponentLoadError);
      });
    });

    describe('traps', () => {
      it('fails only the trapping call; the next call on the same component succeeds in a fresh instance', async () => {
        const trap = await prep('trap');
        const t = tenant('trapper');
        expect(await runtime.invoke(t, call(trap))).toBe(1);
        expect(await runtime.invoke(t, call(trap))).toBe(2);
        const err = await rejection(runtime.invoke(t, call(trap, 'execute', undefined, { text: 'trap' })));
        expect(err).toBeInstanceOf(ComponentTrapError);
        expect((err as Error).message).toMatch(
          /component 'trap' trapped in 'execute' for tenant 'trapper\/dev\/-'/,
        );
        expect(await runtime.invoke(t, call(trap))).toBe(1);
        // The worker survived the trap: only the instance was replaced.
        expect(tenantStats(runtime, 'trapper')).toMatchObject({ traps: 1, workerStarts: 1, crashes: 0 });
      });

      it('a thrown JS error in a 0.6 component is a trap too', async () => {
        const v06 = await prep('js-v06');
        await expect(runtime.invoke(tenant('a'), call(v06, 'crash', {}))).rejects.toBeInstanceOf(
          ComponentTrapError,
        );
        expect(await runtime.invoke(tenant('a'), call(v06, 'sum', { values: [2, 2] }))).toEqual({ sum: 4 });
      });
    });

    describe('deadlines', () => {
      it('stops a looping component at its deadline, names it, and replaces the worker', async () => {
        const [loop, echo] = await Promise.all([prep('loop'), prep('echo')]);
        const t = tenant('slow');
        expect(await runtime.invoke(t, call(echo, 'execute', 'warm'))).toBe('warm');
        const started = performance.now();
        const err = await rejection(runtime.invoke(t, call(loop)));
        const took = performance.now() - started;
        expect(err).toBeInstanceOf(ComponentTimeoutError);
        expect(err).toMatchObject({
          code: 'component_timeout',
          httpStatus: 504,
          details: { tenant: 'slow/dev/-', component: 'loop', operation: 'execute', deadlineMs: 300 },
        });
        expect((err as Error).message).toBe(
          "component 'loop' operation 'execute' for tenant 'slow/dev/-' did not finish within its deadline of 300 ms; its worker was stopped and replaced",
        );
        expect(took).toBeGreaterThanOrEqual(295);
        // Generous: CI shares 2 cores. The end-to-end test holds the reply to deadline + 100 ms.
        expect(took).toBeLessThan(300 + 250);
        expect(tenantStats(runtime, 'slow')).toMatchObject({ timeouts: 1 });
        // The replacement answers.
        expect(await runtime.invoke(t, call(echo, 'execute', 'after'))).toBe('after');
        // The dead worker was replaced once (the tenant keeps a minimum of one).
        expect(tenantStats(runtime, 'slow').workerStarts).toBe(2);
      });

      it("keeps answering another tenant's calls while a loop runs", async () => {
        const [loop, echo] = await Promise.all([prep('loop'), prep('echo')]);
        await runtime.invoke(tenant('other'), call(echo, 'execute', 'warm'));
        await runtime.invoke(tenant('slow'), call(echo, 'execute', 'warm'));
        const looping = rejection(runtime.invoke(tenant('slow'), call(loop, 'execute', undefined, {}, 400)));
        const latencies: number[] = [];
        let answered = 0;
        let done = false;
        void looping.then(() => (done = true));
        while (!done) {
          const t0 = performance.now();
          expect(await runtime.invoke(tenant('other'), call(echo, 'execute', `n${answered}`))).toBe(
            `n${answered}`,
          );
          latencies.push(performance.now() - t0);
          answered++;
        }
        expect(await looping).toBeInstanceOf(ComponentTimeoutError);
        expect(answered).toBeGreaterThan(20);
        console.log(
          `[${channel}] other tenant during a 400 ms loop: ${answered} calls, p50 ${percentile(latencies, 0.5).toFixed(3)} ms, p99 ${percentile(latencies, 0.99).toFixed(3)} ms`,
        );
      });

      it('a node deadline narrower than the tenant default wins', async () => {
        const loop = await prep('loop');
        const err = await rejection(runtime.invoke(tenant('a'), call(loop, 'execute', undefined, {}, 150)));
        expect(err).toMatchObject({ code: 'component_timeout', details: { deadlineMs: 150 } });
      });
    });

    describe('memory cap', () => {
      it('discards an instance that grows past its cap, and the next call starts fresh', async () => {
        const [grow, echo] = await Promise.all([prep('grow'), prep('echo')]);
        const t = tenant('bomb');
        const err = await rejection(runtime.invoke(t, call(grow)));
        expect(err).toBeInstanceOf(ComponentMemoryExceededError);
        expect((err as Error).message).toMatch(
          /component 'grow' operation 'execute' for tenant 'bomb\/dev\/-' ran into its memory cap of 32\.0 MiB/,
        );
        expect(tenantStats(runtime, 'bomb').memoryKills).toBe(1);
        expect(await runtime.invoke(t, call(echo, 'execute', 'still here'))).toBe('still here');
      });

      // 50 worker discards exercise the worker lifecycle, which is the same for both channels: once is enough.
      it.runIf(channel === 'atomics')('keeps the process RSS bounded over 50 memory bombs', async () => {
        const grow = await prep('grow');
        const t = tenant('bomb');
        await rejection(runtime.invoke(t, call(grow)));
        const before = process.memoryUsage().rss;
        let peak = before;
        for (let i = 0; i < 50; i++) {
          const err = await rejection(runtime.invoke(t, call(grow)));
          expect(err).toBeInstanceOf(ComponentMemoryExceededError);
          peak = Math.max(peak, process.memoryUsage().rss);
        }
        const after = process.memoryUsage().rss;
        console.log(
          `[${channel}] RSS over 50 memory bombs (cap 32 MiB, 64 MiB asked each): before ${(before / 2 ** 20).toFixed(0)} MiB, peak ${(peak / 2 ** 20).toFixed(0)} MiB, after ${(after / 2 ** 20).toFixed(0)} MiB`,
        );
        // Unbounded, 50 bombs would hold 3.2 GiB; each worker is discarded with its instance.
        expect(peak - before).toBeLessThan(400 * 2 ** 20);
        expect(after - before).toBeLessThan(200 * 2 ** 20);
        expect(tenantStats(runtime, 'bomb').memoryKills).toBeGreaterThanOrEqual(51);
      });
    });

    describe('isolation and limits', () => {
      it('gives each tenant its own instance of a stateful component', async () => {
        const counter = await prep('counter');
        const seen: Array<[string, unknown]> = [];
        for (let i = 0; i < 3; i++) {
          seen.push(['a', await runtime.invoke(tenant('count-a'), call(counter))]);
          seen.push(['b', await runtime.invoke(tenant('count-b'), call(counter))]);
        }
        expect(seen).toEqual([
          ['a', 1],
          ['b', 1],
          ['a', 2],
          ['b', 2],
          ['a', 3],
          ['b', 3],
        ]);
        // Same tenant, another env: another instance (in the tenant's own workers).
        expect(await runtime.invoke(tenant('count-a', 'prod'), call(counter))).toBe(1);
        expect(tenantStats(runtime, 'count-a').instances).toEqual({
          'count-a/dev/-': 1,
          'count-a/prod/-': 1,
        });
        expect(tenantStats(runtime, 'count-b').instances).toEqual({ 'count-b/dev/-': 1 });
      });

      it('fails fast with ComponentBusy past the concurrency limit and the queue', async () => {
        const loop = await prep('loop');
        const t = tenant('tight');
        const pipeline = runtime.settings.pipeline;
        // One worker × pipeline slots in flight, plus a queue of one.
        const inflight = Array.from({ length: pipeline + 1 }, () =>
          rejection(runtime.invoke(t, call(loop, 'execute', undefined, {}, 250))),
        );
        const busy = await rejection(runtime.invoke(t, call(loop, 'execute', undefined, {}, 250)));
        expect(busy).toBeInstanceOf(ComponentBusyError);
        expect(busy).toMatchObject({ code: 'component_busy', httpStatus: 429 });
        expect((busy as Error).message).toContain("tenant 'tight'");
        const outcomes = await Promise.all(inflight);
        expect(outcomes.map((e) => (e as Error).constructor.name)).toEqual(
          outcomes.map(() => 'ComponentTimeoutError'),
        );
        expect(tenantStats(runtime, 'tight').busyRejections).toBe(1);
      });

      it('release() drops the tenant instances', async () => {
        const counter = await prep('counter');
        const t = tenant('released');
        await runtime.invoke(t, call(counter));
        expect(await runtime.invoke(t, call(counter))).toBe(2);
        await runtime.release(t);
        expect(tenantStats(runtime, 'released').instances).toEqual({});
        expect(await runtime.invoke(t, call(counter))).toBe(1);
      });

      it('reports per-tenant pool details', () => {
        const stats = runtime.stats() as Record<string, unknown> & {
          tenants: Record<string, TenantPoolStats>;
        };
        expect(stats).toMatchObject({ kind: 'pool', channel });
        expect(stats.tenants['slow']).toMatchObject({
          settings: { deadlineMs: 300 },
          timeouts: expect.any(Number),
        });
        expect(stats.tenants['bomb']?.settings.memoryMb).toBe(32);
        expect(typeof stats['queueDepth']).toBe('number');
        expect(stats['instancesPerTenant']).toMatchObject({ 'count-a/dev/-': 1 });
      });
    });
  },
);

describe('PooledComponentRuntime: transpile cache across starts', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'greentic-pool-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a second runtime over the same cache dir prepares without transpiling', async () => {
    const specs = await Promise.all([fixtureSpec('echo'), fixtureSpec('js-v06')]);
    resetTranspileStats();
    const first = new PooledComponentRuntime({ transpileCache: new TranspileCache(dir) });
    const p1 = await Promise.all(specs.map((s) => first.prepare(s)));
    expect(first.stats()).toMatchObject({ transpiles: 2 });
    await first.close();

    resetTranspileStats();
    const second = new PooledComponentRuntime({ transpileCache: new TranspileCache(dir) });
    const p2 = await Promise.all(specs.map((s) => second.prepare(s)));
    expect(p2).toEqual(p1);
    expect(second.stats()).toMatchObject({ transpiles: 0, cache: { diskHits: 2 } });
    expect(transpileStats()).toMatchObject({ transpiles: 0, diskHits: 2 });
    expect(await second.invoke(tenant('a'), call(p2[0]!))).toBe('hello there');
    await second.close();
  });

  it('prunes entries unused past cacheMaxAgeMs when the application starts, keeping the ones it prepared', async () => {
    const stale = join(dir, 'transpiled', `${'f'.repeat(64)}-jco0.0.1-p1`);
    await mkdir(stale, { recursive: true });
    await writeFile(join(stale, 'meta.json'), '{}');
    const longAgo = new Date(Date.now() - 40 * 86_400_000);
    await utimes(join(stale, 'meta.json'), longAgo, longAgo);
    const runtime = new PooledComponentRuntime({
      transpileCache: new TranspileCache(dir),
      cacheMaxAgeMs: 30 * 86_400_000,
    });
    const echo = await runtime.prepare(await fixtureSpec('echo'));
    await runtime.onApplicationBootstrap();
    const deadline = Date.now() + 5_000;
    while ((await readdir(join(dir, 'transpiled'))).includes(`${'f'.repeat(64)}-jco0.0.1-p1`)) {
      if (Date.now() > deadline) throw new Error('the stale entry was not pruned within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await runtime.invoke(tenant('a'), call(echo))).toBe('hello there');
    expect((await readdir(join(dir, 'transpiled'))).some((n) => n.startsWith(echo.digest))).toBe(true);
    await runtime.close();
  });
});
