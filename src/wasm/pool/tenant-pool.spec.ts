import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixtureSpec, type FixtureName } from '../../../test/fixtures/fixture-paths.js';
import {
  ComponentBusyError,
  ComponentError,
  ComponentMemoryExceededError,
  ComponentTimeoutError,
} from '../../common/errors.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import { HostCalls } from '../host/host-calls.js';
import { TranspileCache } from '../transpile-cache.js';
import { ComponentLoader, type LoadedComponent } from './component-loader.js';
import { DEFAULT_POOL_SETTINGS, type PoolSettings } from './pool-settings.js';
import { TenantPool, type KillKind, type PoolJob } from './tenant-pool.js';

const loader = new ComponentLoader(new TranspileCache());
const hostCalls = new HostCalls();
const components = new Map<FixtureName, LoadedComponent>();

beforeAll(async () => {
  for (const name of ['echo', 'loop', 'grow', 'counter'] as const)
    components.set(name, await loader.load(await fixtureSpec(name)));
});

const pools: TenantPool[] = [];
afterEach(() => {
  for (const p of pools.splice(0)) p.close();
});

interface Kill {
  tenant: string;
  kind: KillKind;
  component: string | undefined;
}

function pool(tenantId: string, settings: Partial<PoolSettings>, kills: Kill[] = []): TenantPool {
  const p = new TenantPool(
    tenantId,
    // No polling: on a loaded two-core machine a spinning thread only steals the worker's core.
    { ...DEFAULT_POOL_SETTINGS, spinUs: 0, mainSpinUs: 0, memoryMb: 32, ...settings },
    loader,
    hostCalls,
    { killed: (tenant, kind, component) => kills.push({ tenant, kind, component }) },
  );
  pools.push(p);
  return p;
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: Error };

let nextId = 1;

/**
 * Submits one call of `name` and journals its outcome; `label` names it in `order` when it
 * settles, so a spec can assert the order calls were answered in.
 */
function submit(
  target: TenantPool,
  name: FixtureName,
  options: {
    input?: unknown;
    deadlineMs?: number;
    tenant?: TenantCtx;
    label?: string;
    order?: string[];
  } = {},
): Promise<Outcome> {
  const component = components.get(name)!;
  const tenant = options.tenant ?? { tenantId: target.tenantId, envId: 'dev' };
  const tk = tenantKey(tenant);
  const deadlineMs = options.deadlineMs ?? 30_000;
  const id = nextId++;
  const label = options.label ?? `${name}#${id}`;
  return new Promise<Outcome>((resolve) => {
    const job: PoolJob = {
      id,
      tenant,
      tenantKey: tk,
      component,
      name,
      operation: 'execute',
      request: {
        k: 'call',
        id,
        tk,
        t: tenant,
        d: component.digest,
        n: name,
        op: 'execute',
        input: options.input,
        ctx: {
          flowId: 'flow-1',
          nodeId: 'node-1',
          messageId: `msg-${id}`,
          userId: 'user-1',
          sessionKey: `${tk}:webhook:c1:user-1`,
          text: 'hello',
        },
        deadlineMs,
      },
      deadlineMs,
      deadlineAt: performance.now() + deadlineMs,
      orphanings: 0,
      resolve: (value) => {
        options.order?.push(label);
        resolve({ ok: true, value });
      },
      reject: (error) => {
        options.order?.push(`${label}:${(error as ComponentError).code ?? error.name}`);
        resolve({ ok: false, error });
      },
    };
    target.submit(job);
  });
}

/**
 * Loads `names` into the pool's worker. A call whose component the pool has not loaded yet waits
 * for that load before it is queued, so specs about order load first.
 */
async function loaded(p: TenantPool, names: FixtureName[]): Promise<TenantPool> {
  await p.warm(names.map((n) => components.get(n)!));
  return p;
}

const value = (o: Outcome): unknown => (o.ok ? o.value : o.error);
const error = (o: Outcome): Error => {
  if (o.ok) throw new Error(`expected a failure, got ${JSON.stringify(o.value)}`);
  return o.error;
};

describe('TenantPool: deadline', () => {
  it('answers a call past its deadline with component_timeout, replaces the worker and runs the calls behind it', async () => {
    const kills: Kill[] = [];
    // One worker, two calls in flight: the first counter call is pipelined behind the loop on the
    // worker that is stopped, the other two wait in the queue.
    const p = await loaded(pool('slow', { maxWorkers: 1, pipeline: 2, queueSize: 8 }, kills), [
      'echo',
      'loop',
      'counter',
    ]);
    expect(value(await submit(p, 'echo', { input: 'warm' }))).toBe('warm');
    const order: string[] = [];
    const loop = submit(p, 'loop', { deadlineMs: 400, label: 'loop', order });
    const counters = [1, 2, 3].map((n) => submit(p, 'counter', { label: `counter${n}`, order }));

    const timedOut = error(await loop);
    expect(timedOut).toBeInstanceOf(ComponentTimeoutError);
    expect(timedOut).toMatchObject({
      code: 'component_timeout',
      details: { tenant: 'slow/dev/-', component: 'loop', operation: 'execute', deadlineMs: 400 },
    });
    expect(timedOut.message).toBe(
      "component 'loop' operation 'execute' for tenant 'slow/dev/-' did not finish within its deadline of 400 ms; its worker was stopped and replaced",
    );
    // None lost: the replacement runs all three, in the order they were submitted, in a fresh instance.
    expect((await Promise.all(counters)).map(value)).toEqual([1, 2, 3]);
    expect(order).toEqual(['loop:component_timeout', 'counter1', 'counter2', 'counter3']);
    expect(kills).toEqual([{ tenant: 'slow', kind: 'timeout', component: 'loop' }]);
    expect(p.stats()).toMatchObject({ timeouts: 1, workerStarts: 2, workers: 1, queued: 0, inflight: 0 });
    // The pool goes on serving.
    expect(value(await submit(p, 'echo', { input: 'after' }))).toBe('after');
  });

  it('a queued call whose deadline passes while it waits is answered component_timeout; the rest still run', async () => {
    const p = await loaded(pool('queued', { maxWorkers: 1, pipeline: 1, queueSize: 8 }), ['echo', 'loop']);
    expect(value(await submit(p, 'echo', { input: 'warm' }))).toBe('warm');
    const order: string[] = [];
    const loop = submit(p, 'loop', { deadlineMs: 1_500, label: 'loop', order });
    const short = submit(p, 'echo', { input: 'short', deadlineMs: 200, label: 'short', order });
    const patient = submit(p, 'echo', { input: 'patient', label: 'patient', order });

    const waited = error(await short);
    expect(waited).toBeInstanceOf(ComponentTimeoutError);
    expect(waited.message).toBe(
      "component 'echo' operation 'execute' for tenant 'queued/dev/-' did not start within its deadline of 200 ms (it waited behind other calls)",
    );
    expect(error(await loop)).toBeInstanceOf(ComponentTimeoutError);
    expect(value(await patient)).toBe('patient');
    expect(order).toEqual(['short:component_timeout', 'loop:component_timeout', 'patient']);
  });
});

describe('TenantPool: memory cap', () => {
  it('discards a component that grows past its cap with a clear error; the next call works, other tenants keep their instances', async () => {
    const kills: Kill[] = [];
    const a = await loaded(pool('bomber', { maxWorkers: 1, pipeline: 2 }, kills), ['counter', 'grow']);
    const b = pool('neighbour', { maxWorkers: 1, pipeline: 2 }, kills);
    for (const p of [a, b]) {
      expect(value(await submit(p, 'counter'))).toBe(1);
      expect(value(await submit(p, 'counter'))).toBe(2);
    }

    const bomb = submit(a, 'grow');
    const behind = submit(a, 'counter');
    const err = error(await bomb);
    expect(err).toBeInstanceOf(ComponentMemoryExceededError);
    expect(err).toMatchObject({ code: 'component_memory_exceeded' });
    expect(err.message).toMatch(
      /component 'grow' operation 'execute' for tenant 'bomber\/dev\/-' ran into its memory cap of 32\.0 MiB/,
    );
    // The call behind the bomb was not lost, and its instance died with the worker: it counts from 1.
    expect(value(await behind)).toBe(1);
    expect(value(await submit(a, 'counter'))).toBe(2);
    // The other tenant's worker and instance were untouched.
    expect(value(await submit(b, 'counter'))).toBe(3);

    expect(kills).toEqual([{ tenant: 'bomber', kind: 'memory', component: 'grow' }]);
    expect(a.stats()).toMatchObject({ memoryKills: 1, workerStarts: 2, instances: { 'bomber/dev/-': 1 } });
    expect(b.stats()).toMatchObject({ memoryKills: 0, workerStarts: 1, instances: { 'neighbour/dev/-': 1 } });
  });
});

describe('TenantPool: busy', () => {
  it('queues calls beyond its workers in order and refuses at once past the queue cap', async () => {
    const p = pool('busy', { maxWorkers: 1, pipeline: 1, queueSize: 4 });
    expect(value(await submit(p, 'counter'))).toBe(1);
    const order: string[] = [];
    // One in flight, four queued, the sixth over the cap.
    const accepted = [1, 2, 3, 4, 5].map((n) => submit(p, 'counter', { label: `call${n}`, order }));
    expect(p.stats()).toMatchObject({ inflight: 1, queued: 4 });
    const refused = await submit(p, 'counter', { label: 'call6', order });

    const busy = error(refused);
    expect(busy).toBeInstanceOf(ComponentBusyError);
    expect(busy).toMatchObject({
      code: 'component_busy',
      httpStatus: 429,
      details: { tenant: 'busy', component: 'counter', queued: 4 },
    });
    expect(busy.message).toContain("tenant 'busy' has 1 component calls in flight and 4 queued");
    // Refused before any queued call was answered; every accepted call ran, in order.
    expect(order[0]).toBe('call6:component_busy');
    expect((await Promise.all(accepted)).map(value)).toEqual([2, 3, 4, 5, 6]);
    expect(order).toEqual(['call6:component_busy', 'call1', 'call2', 'call3', 'call4', 'call5']);
    expect(p.stats()).toMatchObject({ busyRejections: 1, queued: 0, inflight: 0 });
    expect(value(await submit(p, 'counter'))).toBe(7);
  });

  it('retire() hands its queued calls, in order, to a successor pool', async () => {
    const old = await loaded(pool('limits', { maxWorkers: 1, pipeline: 1, queueSize: 8 }), ['echo', 'loop']);
    expect(value(await submit(old, 'echo', { input: 'warm' }))).toBe('warm');
    const loop = submit(old, 'loop', { deadlineMs: 500 });
    const queued = ['one', 'two', 'three'].map((input) => submit(old, 'echo', { input }));
    const handed = old.retire();
    expect(handed.map((j) => j.request.k === 'call' && j.request.input)).toEqual(['one', 'two', 'three']);

    const successor = pool('limits', { maxWorkers: 1, pipeline: 1, queueSize: 8, memoryMb: 48 });
    for (const job of handed) successor.submit(job);
    expect((await Promise.all(queued)).map(value)).toEqual(['one', 'two', 'three']);
    // The call already running on the retired pool finishes there (here: at its deadline).
    expect(error(await loop)).toBeInstanceOf(ComponentTimeoutError);
    // A retired pool takes nothing more.
    expect(error(await submit(old, 'echo'))).toMatchObject({ code: 'component_runtime_closed' });
  });
});

describe('TenantPool: tenants', () => {
  it("keeps each tenant key's instances apart inside the pool and across pools", async () => {
    const a = pool('ta', { maxWorkers: 1 });
    const b = pool('tb', { maxWorkers: 1 });
    const prod: TenantCtx = { tenantId: 'ta', envId: 'prod' };
    const seen: unknown[] = [];
    for (let i = 0; i < 2; i++) {
      seen.push(value(await submit(a, 'counter')));
      seen.push(value(await submit(b, 'counter')));
      seen.push(value(await submit(a, 'counter', { tenant: prod })));
    }
    expect(seen).toEqual([1, 1, 1, 2, 2, 2]);
    expect(a.stats().instances).toEqual({ 'ta/dev/-': 1, 'ta/prod/-': 1 });
    expect(b.stats().instances).toEqual({ 'tb/dev/-': 1 });
    // Dropping one tenant key (pack reload) restarts only its instances.
    a.drop('ta/prod/-');
    expect(value(await submit(a, 'counter', { tenant: prod }))).toBe(1);
    expect(value(await submit(a, 'counter'))).toBe(3);
  });
});
