import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { fixtureSpec, type FixtureName } from '../../../test/fixtures/fixture-paths.js';
import { ComponentError, ComponentTimeoutError, type GreenticError } from '../../common/errors.js';
import { TranspileCache } from '../transpile-cache.js';
import { ComponentLoader, type LoadedComponent } from './component-loader.js';
import { PoolWorker, type DeathReason, type PendingRequest, type PoolWorkerHooks } from './pool-worker.js';
import type { CallRequest, LoadRequest, WorkerChannel, WorkerResult } from './protocol.js';

const MiB = 1024 * 1024;
const CAP_BYTES = 32 * MiB;

const loader = new ComponentLoader(new TranspileCache());
const loads = new Map<FixtureName, LoadRequest>();
const components = new Map<FixtureName, LoadedComponent>();

beforeAll(async () => {
  for (const name of ['echo', 'loop', 'grow', 'counter'] as const) {
    const component = await loader.load(await fixtureSpec(name));
    components.set(name, component);
    loads.set(name, await loader.loadRequest(component, CAP_BYTES));
  }
});

/** What the worker told its owner, in the order it happened. */
interface Journal {
  events: string[];
  deaths: Array<{ reason: DeathReason; orphans: number[] }>;
  freed: number;
}

function hooks(journal: Journal): PoolWorkerHooks {
  return {
    hostCall: () => undefined,
    timeoutError: (p, running) =>
      new ComponentTimeoutError(`call ${p.callId} ${running ? 'ran' : 'waited'} past its deadline`),
    deathError: (reason, p) => new ComponentError('died', `call ${p.callId} stopped: ${reason.kind}`),
    died: (_w, reason, orphans) => {
      journal.events.push(`died:${reason.kind}`);
      journal.deaths.push({ reason, orphans: orphans.map((o) => o.callId) });
    },
    freed: () => {
      journal.freed++;
    },
  };
}

const workers: PoolWorker[] = [];
afterEach(() => {
  for (const w of workers.splice(0)) if (!w.dead) w.terminate();
});

let nextId = 100;

function call(name: FixtureName, input: unknown, id = nextId++): CallRequest {
  const component = components.get(name)!;
  return {
    k: 'call',
    id,
    tk: 'acme/dev/-',
    t: { tenantId: 'acme', envId: 'dev' },
    d: component.digest,
    n: name,
    op: 'execute',
    input,
    ctx: {
      flowId: 'flow-1',
      nodeId: 'node-1',
      messageId: `msg-${id}`,
      userId: 'user-1',
      sessionKey: 'acme:webhook:c1:user-1',
      text: 'hello',
    },
    deadlineMs: 60_000,
  };
}

describe.each<WorkerChannel>(['atomics', 'message'])('PoolWorker (%s channel)', (channel) => {
  function start(slots = 4): { worker: PoolWorker; journal: Journal } {
    const journal: Journal = { events: [], deaths: [], freed: 0 };
    const worker = new PoolWorker({
      id: nextId++,
      tenantId: 'acme',
      channel,
      memoryCapBytes: CAP_BYTES,
      heapMb: 96,
      spinUs: 0,
      mainSpinUs: 0,
      slots,
      hooks: hooks(journal),
    });
    workers.push(worker);
    return { worker, journal };
  }

  /** Sends a request; the pending record is journaled when settled. */
  function send(
    worker: PoolWorker,
    journal: Journal,
    request: CallRequest | LoadRequest,
    deadlineMs = Infinity,
  ): { pending: PendingRequest; settled: Promise<{ result?: WorkerResult; error?: GreenticError }> } {
    const callId = request.k === 'call' ? request.id : 0;
    let done!: (v: { result?: WorkerResult; error?: GreenticError }) => void;
    const settled = new Promise<{ result?: WorkerResult; error?: GreenticError }>((r) => (done = r));
    const pending: PendingRequest = {
      seq: 0,
      callId,
      deadlineAt: performance.now() + deadlineMs,
      deadlineMs,
      settle: (result, error) => {
        journal.events.push(`settled:${callId}${error ? ':error' : ''}`);
        const entry = { ...(result ? { result } : {}), ...(error ? { error } : {}) };
        done(entry);
      },
    };
    worker.send(request, pending);
    return { pending, settled };
  }

  /** A booted worker with `names` loaded, so deadlines below count only the calls' own time. */
  async function ready(names: FixtureName[]): Promise<{ worker: PoolWorker; journal: Journal }> {
    const { worker, journal } = start();
    for (const name of names) send(worker, journal, loads.get(name)!);
    const warm = await send(worker, journal, call('echo', 'warm')).settled;
    expect(warm.result).toMatchObject({ ok: true, value: 'warm' });
    expect(worker.ready).toBe(true);
    journal.events.length = 0;
    return { worker, journal };
  }

  it('answers each request with its own result, in the order sent', async () => {
    const { worker, journal } = await ready(['echo', 'counter']);
    const sent = [
      send(worker, journal, call('echo', 'first')),
      send(worker, journal, call('counter', null)),
      send(worker, journal, call('echo', { second: [1, 2] })),
      send(worker, journal, call('counter', null)),
      // More than the 4 slots: the fifth waits for a free slot and is not lost.
      send(worker, journal, call('echo', 'fifth')),
    ];
    const results = await Promise.all(sent.map((s) => s.settled));
    expect(results.map((r) => (r.result && 'value' in r.result ? r.result.value : r))).toEqual([
      'first',
      1,
      { second: [1, 2] },
      2,
      'fifth',
    ]);
    expect(journal.events).toEqual(sent.map((s) => `settled:${s.pending.callId}`));
    expect(journal.freed).toBeGreaterThanOrEqual(5);
    expect(worker.load).toBe(0);
    expect(journal.deaths).toEqual([]);
  });

  it('stops a call running past its deadline and hands the calls behind it back unstarted', async () => {
    const { worker, journal } = await ready(['echo', 'loop']);
    const loop = send(worker, journal, call('loop', null), 300);
    const behind = [send(worker, journal, call('echo', 'a')), send(worker, journal, call('echo', 'b'))];

    const stopped = await loop.settled;
    expect(stopped.error).toMatchObject({
      code: 'died',
      message: `call ${loop.pending.callId} stopped: timeout`,
    });
    expect(journal.deaths).toHaveLength(1);
    const [death] = journal.deaths;
    expect(death?.reason).toMatchObject({ kind: 'timeout', request: loop.pending });
    // Never started: the pool re-runs them elsewhere; the worker does not answer them.
    expect(death?.orphans).toEqual(behind.map((b) => b.pending.callId));
    expect(journal.events).toEqual([`settled:${loop.pending.callId}:error`, 'died:timeout']);
    expect(worker.dead).toBe(true);
    expect(worker.available).toBe(false);
    expect(() => send(worker, journal, call('echo', 'late'))).toThrow(/is dead/);
  });

  it('answers a call whose deadline passes while it waits, and keeps running the one ahead', async () => {
    const { worker, journal } = await ready(['echo', 'loop']);
    const loop = send(worker, journal, call('loop', null), 2_000);
    const waiting = send(worker, journal, call('echo', 'never'), 200);

    const early = await waiting.settled;
    expect(early.error).toBeInstanceOf(ComponentTimeoutError);
    expect(early.error?.message).toBe(`call ${waiting.pending.callId} waited past its deadline`);
    // The loop still has time: the worker lives on.
    expect(worker.dead).toBe(false);

    expect((await loop.settled).error?.message).toBe(`call ${loop.pending.callId} stopped: timeout`);
    // The early-answered call is neither answered twice nor handed back.
    expect(journal.deaths.map((d) => d.orphans)).toEqual([[]]);
    expect(journal.events).toEqual([
      `settled:${waiting.pending.callId}:error`,
      `settled:${loop.pending.callId}:error`,
      'died:timeout',
    ]);
  });

  it('discards itself when a call grows memory past the cap, after answering that call', async () => {
    const { worker, journal } = await ready(['echo', 'grow']);
    const grow = send(worker, journal, call('grow', null));
    const behind = send(worker, journal, call('echo', 'after'));

    const answered = await grow.settled;
    expect(answered.result).toMatchObject({
      ok: false,
      kill: 'memory',
      error: { cls: 'ComponentMemoryExceededError', code: 'component_memory_exceeded' },
    });
    expect(answered.result?.ok === false && answered.result.error.message).toMatch(
      /component 'grow' operation 'execute' for tenant 'acme\/dev\/-' ran into its memory cap of 32\.0 MiB/,
    );
    await until(() => journal.deaths.length > 0);
    expect(journal.deaths).toEqual([{ reason: { kind: 'memory' }, orphans: [behind.pending.callId] }]);
    expect(worker.dead).toBe(true);
  });
});

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!cond()) throw new Error('condition not met within 10 s');
}
