import { Logger, type LoggerService } from '@nestjs/common';
import { MetricService } from 'nestjs-otel';
import { describe, expect, it } from 'vitest';
import { fakeChannel } from '../../test/support/fakes/channel-context.js';
import { DeliveryLimitError, SessionConflictError } from '../common/errors.js';
import type { FlowRoute, FlowRouter } from '../packs/flow-router.service.js';
import type { FlowRunInput, FlowRunResult } from '../flows/flow-run.types.js';
import type { LoadedPack } from '../packs/pack-registry.service.js';
import type {
  CommitOptions,
  FlowSnapshot,
  SessionRecord,
  SessionStore,
  SessionStoreHealth,
} from '../core/session-store.js';
import type { ResolvedChannel } from '../tenancy/bundle-registry.service.js';
import { tenantKey, type TenantCtx } from '../core/tenant-ctx.js';
import {
  subjectMatches,
  type BusHandler,
  type BusHealth,
  type BusSubscription,
  type MessageBus,
  type PublishAck,
  type PublishOptions,
} from '../core/message-bus.js';
import {
  messageDedupeId,
  type DuplicateNotice,
  type EgressMessage,
  type MessageEnvelope,
} from '../core/message-envelope.js';
import { egressSubject, replySubject } from '../core/subjects.js';
import { OwnershipLostError } from '../common/errors.js';
import type { OwnershipFence } from '../core/partition-ownership.js';
import { MessageProcessor } from './message-processor.service.js';
import { InflightWork } from './inflight-work.js';
import { ReplyWaiter, replyRef } from './reply-waiter.service.js';
import type { RunnerConfig } from '../config/runner-config.js';
import { TenancyMismatchError } from '../common/errors.js';
import { TenantSessions } from '../sessions/tenant-sessions.service.js';
import { TenantComponents } from '../wasm/tenant-components.service.js';
import type { ComponentRuntime } from '../core/component-runtime.js';
import { isPermanentError } from '../common/errors.js';
import { BusUnavailableError } from './nats/nats-errors.js';

/**
 * MessageProcessor through `process()` only, with in-memory fakes for its seams. A "replica" is a
 * processor; two replicas share the store (Redis) and the bus (JetStream), as in production, so a
 * crash is a seam that throws at a chosen step and the redelivery is the same envelope handed to
 * a fresh replica.
 */

// --- Fakes ---------------------------------------------------------------------------------------

/** A session store outside the process: records kept as JSON, commit a real compare-and-set. */
class FakeSessionStore implements SessionStore {
  readonly kind = 'fake';
  private readonly records = new Map<string, string>();
  private readonly tails = new Map<string, Promise<unknown>>();
  private readonly marked = new Set<string>();
  readonly commits: { record: SessionRecord; expectedVersion: number; options?: CommitOptions }[] = [];
  /** Runs before each compare-and-set: a test's concurrent writer, or its crash. */
  beforeCommit?: (record: SessionRecord, options?: CommitOptions) => void;

  constructor(readonly durable: boolean) {}

  private k(tenant: TenantCtx, key: string): string {
    return `${tenantKey(tenant)}|${key}`;
  }

  async load(tenant: TenantCtx, key: string): Promise<SessionRecord | null> {
    const s = this.records.get(this.k(tenant, key));
    return s === undefined ? null : (JSON.parse(s) as SessionRecord);
  }

  async commit(
    tenant: TenantCtx,
    record: SessionRecord,
    expectedVersion: number,
    _ttlSeconds: number,
    options?: CommitOptions,
  ): Promise<number> {
    this.beforeCommit?.(record, options);
    const current = (await this.load(tenant, record.key))?.version ?? 0;
    if (current !== expectedVersion) throw new SessionConflictError(record.key);
    const version = expectedVersion + 1;
    this.records.set(this.k(tenant, record.key), JSON.stringify({ ...record, version }));
    this.commits.push({
      record: JSON.parse(JSON.stringify(record)) as SessionRecord,
      expectedVersion,
      options,
    });
    return version;
  }

  /** Another writer's commit (another replica, an admin reset), landing at once, in between two steps. */
  writeConcurrently(tenant: TenantCtx, key: string, data: Record<string, unknown>): void {
    const s = this.records.get(this.k(tenant, key));
    const cur = s === undefined ? null : (JSON.parse(s) as SessionRecord);
    const next: SessionRecord = cur
      ? { ...cur, data, version: cur.version + 1 }
      : { key, version: 1, snapshot: null, data, updatedAt: new Date().toISOString() };
    this.records.set(this.k(tenant, key), JSON.stringify(next));
  }

  async delete(tenant: TenantCtx, key: string): Promise<void> {
    this.records.delete(this.k(tenant, key));
  }

  async runExclusive<T>(tenant: TenantCtx, key: string, fn: () => Promise<T>): Promise<T> {
    const k = this.k(tenant, key);
    const run = (this.tails.get(k) ?? Promise.resolve()).then(fn, fn);
    this.tails.set(
      k,
      run.catch(() => undefined),
    );
    return run;
  }

  async markProcessed(tenant: TenantCtx, key: string, messageId: string): Promise<boolean> {
    const k = `${this.k(tenant, key)}|${messageId}`;
    if (this.marked.has(k)) return false;
    this.marked.add(k);
    return true;
  }

  async isProcessed(tenant: TenantCtx, key: string, messageId: string): Promise<boolean> {
    return this.marked.has(`${this.k(tenant, key)}|${messageId}`);
  }

  async health(): Promise<SessionStoreHealth> {
    return { up: true, details: { kind: this.kind } };
  }

  async close(): Promise<void> {}
}

/** A broker: de-duplicates on `msgId` per subject as JetStream does, and fans out what it accepts. */
class FakeBus implements MessageBus {
  readonly kind = 'fake';
  /** Every publish call, accepted or dropped. */
  readonly publishes: { subject: string; data: unknown; opts: PublishOptions }[] = [];
  /** What subscribers receive: accepted publishes only. */
  readonly delivered: { subject: string; data: unknown; headers: Record<string, string> }[] = [];
  private readonly ids = new Set<string>();
  private readonly handlers: { pattern: string; handler: BusHandler }[] = [];
  /** An error to throw instead of publishing on this subject (an outage, or the replica dying). */
  failOn?: (subject: string) => Error | undefined;

  async publish(subject: string, data: unknown, opts: PublishOptions = {}): Promise<PublishAck> {
    const err = this.failOn?.(subject);
    if (err) throw err;
    const copy = JSON.parse(JSON.stringify(data)) as unknown;
    this.publishes.push({ subject, data: copy, opts });
    // The waiting replica's copy arrives even when the publish is a repeat.
    if (opts.replyTo !== undefined)
      this.delivered.push({ subject: opts.replyTo, data: copy, headers: opts.headers ?? {} });
    if (opts.msgId !== undefined) {
      const id = `${subject}|${opts.msgId}`;
      if (this.ids.has(id)) return { duplicate: true };
      this.ids.add(id);
    }
    const msg = { subject, data: copy, headers: opts.headers ?? {} };
    this.delivered.push(msg);
    for (const h of this.handlers)
      if (subjectMatches(h.pattern, subject)) await h.handler({ ...msg, deliveryCount: 1 });
    return { duplicate: false };
  }

  async subscribe<T>(pattern: string, handler: BusHandler<T>): Promise<BusSubscription> {
    const entry = { pattern, handler: handler as BusHandler };
    this.handlers.push(entry);
    return { unsubscribe: async () => void this.handlers.splice(this.handlers.indexOf(entry), 1) };
  }

  async health(): Promise<BusHealth> {
    return { up: true, details: { kind: this.kind } };
  }

  async close(): Promise<void> {}

  egress(): EgressMessage[] {
    return this.delivered.filter((m) => m.subject.includes('.egress.')).map((m) => m.data as EgressMessage);
  }

  /** What the waiting replica received on its reply subject. */
  answers(): (EgressMessage | DuplicateNotice)[] {
    return this.delivered.filter((m) => m.subject === REPLY_TO).map((m) => m.data as EgressMessage);
  }

  duplicates(): DuplicateNotice[] {
    return this.answers().filter((m) => !('replies' in m));
  }
}

const PACK = {
  id: 'p',
  version: '2',
  flows: new Map(),
  components: new Map(),
  digest: 'sha256:0',
  location: 'mem',
  warnings: [],
  loadedAt: new Date(0).toISOString(),
} satisfies LoadedPack;

/** Routes to the channel's flow, resuming a parked one unless told its pack version is gone. */
class FakeRouter {
  packVersionGone = false;
  readonly routed: (FlowSnapshot | null)[] = [];

  route(resolved: ResolvedChannel, snapshot: FlowSnapshot | null): FlowRoute {
    this.routed.push(snapshot);
    if (snapshot && this.packVersionGone)
      return { pack: PACK, flowId: resolved.channel.flow, snapshot: null, notice: 'Starting again.' };
    return { pack: PACK, flowId: snapshot?.flowId ?? resolved.channel.flow, snapshot };
  }
}

/**
 * A two-turn flow: a fresh session is asked its name and parks; a parked one is greeted and
 * completes. `session.turns` counts the turns the session has seen.
 */
class GreeterFlow {
  readonly runs: FlowRunInput[] = [];
  /** Replaces the flow for the next runs: a failure, or a throw (the run died). */
  override?: (input: FlowRunInput) => Promise<FlowRunResult>;

  async run(input: FlowRunInput): Promise<FlowRunResult> {
    this.runs.push(input);
    if (this.override) return this.override(input);
    await Promise.resolve();
    const turns = ((input.sessionData['turns'] as number | undefined) ?? 0) + 1;
    const sessionData = { ...input.sessionData, turns };
    if (!input.snapshot) {
      return {
        status: 'parked',
        replies: [{ text: 'What is your name?' }],
        snapshot: { packId: 'p', packVersion: '2', flowId: input.flowId, nodeId: 'ask', state: {} },
        sessionData,
        trace: [],
      };
    }
    return {
      status: 'completed',
      replies: [{ text: `Hello, ${input.message.text}` }],
      snapshot: null,
      sessionData,
      trace: [],
    };
  }
}

// --- Helpers -------------------------------------------------------------------------------------

/** Warnings the processor logged, as (fields, message): kept for the specs, not printed. */
const warnings: [unknown, unknown][] = [];
const quiet: LoggerService = {
  log: () => undefined,
  error: () => undefined,
  warn: (fields: unknown, message: unknown) => void warnings.push([fields, message]),
};
Logger.overrideLogger(quiet);

const ACME = fakeChannel('webhook', {}, 'acme', 'main');

/** The greeter flow calls no component: a call reaching the runtime is a bug. */
const NO_COMPONENTS: ComponentRuntime = {
  kind: 'none',
  prepare: () => Promise.reject(new Error('no components in this spec')),
  invoke: () => Promise.reject(new Error('no components in this spec')),
  close: () => Promise.resolve(),
};

function envelope(id: string, text: string, user = 'ann', tenant = 'acme'): MessageEnvelope {
  return {
    id,
    tenant,
    env: 'dev',
    team: 'default',
    channel: 'main',
    provider: 'webhook',
    conversationId: user,
    userId: user,
    sessionKey: `${tenant}:webhook:${user}:${user}`,
    text,
    attachments: [],
    timestamp: new Date().toISOString(),
  };
}

/** One deployment: the shared store and bus, and the flow every replica runs. */
function deployment(durable = true) {
  const store = new FakeSessionStore(durable);
  const bus = new FakeBus();
  const flow = new GreeterFlow();
  const router = new FakeRouter();
  // A replica's processor for one tenant (ACME unless named): its sessions and components bound to
  // it. Its ReplyWaiter is another replica's than REPLY_TO's unless it is given the waiting one.
  const replica = (of: ResolvedChannel = ACME, waiter = waiterOf('replica-b', bus)) =>
    new MessageProcessor(
      of.tenant,
      new TenantSessions(of.tenant, store),
      new TenantComponents(of.tenant, NO_COMPONENTS),
      bus,
      router as unknown as FlowRouter,
      flow,
      new InflightWork(),
      waiter,
      new MetricService(),
    );
  return { store, bus, flow, router, replica };
}

/** A replica's ReplyWaiter (not subscribed: replies handed over in process reach it directly). */
function waiterOf(replica: string, bus: MessageBus): ReplyWaiter {
  return new ReplyWaiter(bus, {
    GREENTIC_NATS_DUPLICATE_WINDOW_S: 120,
    GREENTIC_REPLICA_ID: replica,
  } as RunnerConfig);
}

const EGRESS = egressSubject('dev', 'acme', 'default', 'main');
/** The reply subject of the replica where a caller waits. */
const REPLY_TO = replySubject('replica-a');
const WAITING = { replyTo: REPLY_TO };

// --- Specs ---------------------------------------------------------------------------------------

describe('MessageProcessor', () => {
  it('runs the flow once and publishes its replies on the channel egress subject, de-duplicated per session', async () => {
    const { bus, flow, replica } = deployment();
    const env = {
      ...envelope('m-1', 'hi'),
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      meta: { thread: 't-9' },
    };
    const out = await replica().process(env, ACME);

    expect(flow.runs).toHaveLength(1);
    expect(out).toMatchObject({
      id: 'm-1:reply',
      inReplyTo: 'm-1',
      tenant: 'acme',
      channel: 'main',
      sessionKey: env.sessionKey,
      status: 'parked',
      replies: [{ text: 'What is your name?' }],
      traceparent: env.traceparent,
      meta: { thread: 't-9' },
    });
    expect(bus.publishes).toHaveLength(1);
    const [pub] = bus.publishes;
    expect(pub!.subject).toBe(EGRESS);
    expect(pub!.data).toEqual(out);
    // The reply id is scoped by session, so another user's `m-1:reply` is never dropped as a repeat.
    expect(pub!.opts.msgId).toBe(messageDedupeId(env.sessionKey, 'm-1:reply'));
    expect(pub!.opts.headers).toEqual({
      'greentic-tenant': 'acme',
      'greentic-env': 'dev',
      traceparent: env.traceparent,
    });
  });

  it("hands the flow the session's state, the channel's secrets and limits, and the channel's retry over the tenant's", async () => {
    const { store, flow, replica } = deployment();
    const base = fakeChannel('webhook', {}, 'acme', 'main');
    const resolved: ResolvedChannel = {
      tenant: base.tenant,
      tenantBinding: {
        ...base.tenantBinding,
        limits: { ...base.tenantBinding.limits, flowStepLimit: 7, componentDeadlineMs: 321 },
        retry: { maxAttempts: 2, backoffMs: 10 },
      },
      channel: { ...base.channel, flow: 'greet', secrets: ['API_KEY'] },
    };
    const env = envelope('m-1', 'hi');
    store.writeConcurrently(resolved.tenant, env.sessionKey, { plan: 'gold' });
    const p = replica();

    await p.process(env, resolved);
    expect(flow.runs[0]).toMatchObject({
      tenant: resolved.tenant,
      message: env,
      flowId: 'greet',
      snapshot: null,
      sessionData: { plan: 'gold' },
      allowedSecrets: ['API_KEY'],
      stepLimit: 7,
      componentDeadlineMs: 321,
      defaultRetry: { maxAttempts: 2, backoffMs: 10 },
    });

    const channelRetry = {
      ...resolved,
      channel: { ...resolved.channel, retry: { maxAttempts: 5, backoffMs: 1 } },
    };
    await p.process(envelope('m-2', 'Ann'), channelRetry);
    expect(flow.runs[1]!.defaultRetry).toEqual({ maxAttempts: 5, backoffMs: 1 });
  });

  it.each([
    ['a durable store', true],
    ['an in-process store', false],
  ])(
    'with %s, answers a repeated id of the same session without running the flow again, the session untouched',
    async (_, durable) => {
      const { store, bus, flow, replica } = deployment(durable);
      const env = envelope('m-1', 'hi');
      const first = await replica().process(env, ACME);
      expect(first?.status).toBe('parked');
      const before = await store.load(ACME.tenant, env.sessionKey);

      // The same id again, on another replica, with a caller waiting there (a provider's retry).
      expect(await replica().process({ ...env, text: 'something else' }, ACME, WAITING)).toBeNull();

      expect(flow.runs).toHaveLength(1);
      expect(bus.egress()).toHaveLength(1);
      expect(await store.load(ACME.tenant, env.sessionKey)).toEqual(before);
      if (durable) {
        // The replies stored with the session answer the waiting caller, and the egress publish
        // repeats under the reply's id, which the bus drops.
        expect(bus.answers()).toEqual([first]);
        const onEgress = bus.publishes.filter((p) => p.subject === EGRESS);
        expect(onEgress.map((p) => p.opts.msgId)).toEqual([
          messageDedupeId(env.sessionKey, 'm-1:reply'),
          messageDedupeId(env.sessionKey, 'm-1:reply'),
        ]);
      } else {
        // No replies kept: the waiting caller learns at once that none will come.
        expect(bus.answers()).toEqual([
          {
            inReplyTo: 'm-1',
            tenant: 'acme',
            env: 'dev',
            team: 'default',
            channel: 'main',
            sessionKey: env.sessionKey,
          },
        ]);
      }
    },
  );

  it('still answers a duplicate (null, nothing run) when the notice for a waiting caller cannot be published', async () => {
    const { bus, flow, replica } = deployment(false);
    const env = envelope('m-1', 'hi');
    await replica().process(env, ACME);
    bus.failOn = (subject) => (subject === REPLY_TO ? new BusUnavailableError('no responders') : undefined);
    await expect(replica().process(env, ACME, WAITING)).resolves.toBeNull();
    expect(flow.runs).toHaveLength(1);
  });

  it('sends the replies once to the waiting replica and once on egress; none to a replica when nobody waits', async () => {
    const { bus, replica } = deployment();
    const out = await replica().process(envelope('m-1', 'hi'), ACME, WAITING);
    expect(bus.answers()).toEqual([out]);
    expect(bus.egress()).toEqual([out]);
    await replica().process(envelope('m-2', 'Ann'), ACME);
    expect(bus.answers()).toHaveLength(1);
    expect(bus.egress()).toHaveLength(2);
  });

  it('answers a caller waiting on its own replica in process, after the egress publish: nothing on the reply subject', async () => {
    const { bus, replica } = deployment();
    const here = waiterOf('replica-a', bus);
    const env = envelope('m-1', 'hi');
    const wait = here.expect(replyRef(env), 5_000);
    const out = await replica(ACME, here).process(env, ACME, WAITING);

    await expect(wait.reply).resolves.toBe(out);
    expect(bus.answers()).toEqual([]);
    expect(bus.egress()).toEqual([JSON.parse(JSON.stringify(out))]);
    expect(bus.publishes.map((p) => [p.subject, p.opts.replyTo])).toEqual([[EGRESS, undefined]]);
  });

  it('answers a caller waiting on its own replica once the commit holds the replies, even when the egress publish then fails', async () => {
    const { bus, flow, replica, store } = deployment();
    const here = waiterOf('replica-a', bus);
    const env = envelope('m-1', 'hi');
    const wait = here.expect(replyRef(env), 5_000);
    // After a broker restart the PubAck can take seconds, or fail: the caller does not wait for it.
    bus.failOn = (subject) => (subject === EGRESS ? new BusUnavailableError('no PubAck') : undefined);
    await expect(replica(ACME, here).process(env, ACME, WAITING)).rejects.toThrow(BusUnavailableError);
    const reply = await wait.reply;
    expect(reply?.inReplyTo).toBe('m-1');
    expect(reply?.replies).toEqual([{ text: 'What is your name?' }]);
    expect((await store.load(ACME.tenant, env.sessionKey))?.processed?.map((p) => p.id)).toEqual(['m-1']);

    // The redelivery finds the commit and re-publishes the stored replies for egress; the flow does
    // not run again.
    bus.failOn = undefined;
    expect(await replica(ACME, here).process(env, ACME, WAITING)).toBeNull();
    expect(flow.runs).toHaveLength(1);
    expect(bus.egress().map((m) => m.inReplyTo)).toEqual(['m-1']);
    expect(bus.answers()).toEqual([]);
  });

  it('tells a caller waiting on its own replica in process that a repeat past its replay window will not run', async () => {
    const { bus, flow, replica } = deployment(false);
    const here = waiterOf('replica-a', bus);
    const env = envelope('m-1', 'hi');
    await replica(ACME, here).process(env, ACME);
    const wait = here.expect(replyRef(env), 5_000);
    expect(await replica(ACME, here).process(env, ACME, WAITING)).toBeNull();
    // Nothing stored, so nothing to answer with: the notice settles the wait as a duplicate (null).
    await expect(wait.reply).resolves.toBeNull();
    expect(flow.runs).toHaveLength(1);
    expect(bus.answers()).toEqual([]);
  });

  it('scopes message ids to their session and tenant: another user or tenant reusing an id is a new message', async () => {
    const { bus, flow, replica } = deployment();
    const p = replica();
    const globex = fakeChannel('webhook', {}, 'globex', 'main');
    await p.process(envelope('1', 'hi', 'ann'), ACME);
    await p.process(envelope('1', 'hi', 'bob'), ACME);
    // Same session key text under another tenant (its own processor): a different session in the store.
    await replica(globex).process(
      { ...envelope('1', 'hi', 'ann', 'globex'), sessionKey: 'acme:webhook:ann:ann' },
      globex,
    );
    expect(flow.runs).toHaveLength(3);
    expect(bus.egress()).toHaveLength(3);
    expect(bus.duplicates()).toEqual([]);
  });

  it('parks and resumes: the next message of the session continues from the stored snapshot and session data', async () => {
    const { store, flow, router, replica } = deployment();
    const env1 = envelope('m-1', 'hi');
    const parked = await replica().process(env1, ACME);
    expect(parked?.status).toBe('parked');
    const stored = await store.load(ACME.tenant, env1.sessionKey);
    expect(stored?.snapshot).toMatchObject({ nodeId: 'ask' });
    expect(stored?.data).toEqual({ turns: 1 });

    // Turn two on another replica: it only has what the store kept.
    const done = await replica().process(envelope('m-2', 'Ann'), ACME);
    expect(router.routed[1]).toEqual(stored!.snapshot);
    expect(flow.runs[1]).toMatchObject({ snapshot: stored!.snapshot, sessionData: { turns: 1 } });
    expect(done).toMatchObject({ status: 'completed', replies: [{ text: 'Hello, Ann' }] });
    const after = await store.load(ACME.tenant, env1.sessionKey);
    expect(after?.snapshot).toBeNull();
    expect(after?.data).toEqual({ turns: 2 });
  });

  it("restarts a parked session whose pack version is gone, with the router's notice before the flow's replies", async () => {
    const { flow, router, replica } = deployment();
    await replica().process(envelope('m-1', 'hi'), ACME);
    router.packVersionGone = true;
    const out = await replica().process(envelope('m-2', 'Ann'), ACME);
    expect(flow.runs[1]!.snapshot).toBeNull();
    expect(out?.replies).toEqual([{ text: 'Starting again.' }, { text: 'What is your name?' }]);
  });

  it('answers a failed flow with its error reply and code, commits it, and does not run the id again', async () => {
    const { store, bus, flow, replica } = deployment();
    flow.override = async (input) => ({
      status: 'failed',
      replies: [{ text: 'Sorry, something went wrong.' }],
      snapshot: null,
      sessionData: input.sessionData,
      error: { code: 'component_trap', message: 'unreachable executed', nodeId: 'forecast' },
      trace: [],
    });
    const env = envelope('m-1', 'hi');
    const out = await replica().process(env, ACME);
    expect(out).toMatchObject({
      status: 'failed',
      replies: [{ text: 'Sorry, something went wrong.' }],
    });
    // The caller sees the code and message, not which node of the flow failed.
    expect(out!.error).toEqual({ code: 'component_trap', message: 'unreachable executed' });
    expect(bus.egress()).toEqual([out]);
    expect((await store.load(ACME.tenant, env.sessionKey))?.processed?.map((p) => p.id)).toEqual(['m-1']);
    // The operator's log keeps the node, with the tenant.
    expect(warnings).toContainEqual([
      expect.objectContaining({
        tenant: 'acme',
        messageId: 'm-1',
        error: expect.objectContaining({ nodeId: 'forecast' }),
      }),
      'flow failed',
    ]);

    expect(await replica().process(env, ACME)).toBeNull();
    expect(flow.runs).toHaveLength(1);
  });

  it('leaves nothing behind when the run dies before its commit: the redelivery runs the flow and replies once', async () => {
    const { store, bus, flow, replica } = deployment();
    const env = envelope('m-1', 'hi');
    flow.override = async () => {
      throw new Error('worker lost');
    };
    await expect(replica().process(env, ACME)).rejects.toThrow('worker lost');
    expect(await store.load(ACME.tenant, env.sessionKey)).toBeNull();
    expect(bus.publishes).toEqual([]);

    flow.override = undefined;
    const out = await replica().process(env, ACME);
    expect(out?.status).toBe('parked');
    expect(flow.runs).toHaveLength(2);
    expect(bus.egress()).toHaveLength(1);
  });

  it("refuses to overwrite a concurrent write: a commit losing the compare-and-set publishes nothing, and the redelivery runs on the winner's state", async () => {
    const { store, bus, flow, replica } = deployment();
    const env = envelope('m-1', 'hi');
    // Another writer commits this session while the flow runs.
    store.beforeCommit = () => {
      store.beforeCommit = undefined;
      store.writeConcurrently(ACME.tenant, env.sessionKey, { reset: true });
    };
    const err = await replica()
      .process(env, ACME)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SessionConflictError);
    expect(bus.publishes).toEqual([]);
    const winner = await store.load(ACME.tenant, env.sessionKey);
    expect(winner).toMatchObject({ version: 1, data: { reset: true } });
    expect(winner?.processed).toBeUndefined();

    // The bus redelivers (a 409 is not permanent): the flow runs again, on top of the other write.
    const out = await replica().process(env, ACME);
    expect(out?.status).toBe('parked');
    expect(flow.runs).toHaveLength(2);
    expect(flow.runs[1]!.sessionData).toEqual({ reset: true });
    expect(await store.load(ACME.tenant, env.sessionKey)).toMatchObject({
      data: { reset: true, turns: 1 },
    });
    expect(bus.egress()).toEqual([out]);
  });

  it('a crash between commit and publish: the redelivery re-publishes the stored replies under the same id, without running the flow', async () => {
    const { store, bus, flow, replica } = deployment(true);
    const env = envelope('m-1', 'hi');
    // The replica dies as it publishes: committed, nothing on egress, no ack.
    bus.failOn = (subject) => (subject === EGRESS ? new Error('replica died') : undefined);
    await expect(replica().process(env, ACME)).rejects.toThrow('replica died');
    const committed = await store.load(ACME.tenant, env.sessionKey);
    const pending = committed?.processed?.find((p) => p.id === 'm-1');
    expect(pending?.egress).toMatchObject({ id: 'm-1:reply', status: 'parked' });
    expect(bus.egress()).toEqual([]);

    bus.failOn = undefined;
    expect(await replica().process(env, ACME)).toBeNull();
    expect(flow.runs).toHaveLength(1);
    // Exactly the replies the flow produced, under the reply's own de-duplication id.
    expect(bus.egress()).toEqual([pending!.egress]);
    expect(bus.publishes.at(-1)!.opts.msgId).toBe(messageDedupeId(env.sessionKey, 'm-1:reply'));
    // No second write: the replay changed nothing, and the session state of the first run stands.
    expect(store.commits).toHaveLength(1);
    const after = await store.load(ACME.tenant, env.sessionKey);
    expect(after).toEqual(committed);

    // A further redelivery re-publishes under the same id again, which the bus drops.
    expect(await replica().process(env, ACME)).toBeNull();
    expect(bus.egress()).toHaveLength(1);
    expect(bus.publishes.filter((p) => p.subject === EGRESS)).toHaveLength(2);
  });

  it('a crash after the publish: the redelivery publishes under the same id, which the bus drops, so one reply is delivered', async () => {
    const { bus, flow, replica } = deployment(true);
    const env = envelope('m-1', 'hi');
    await replica().process(env, ACME);
    // The replica died before acking: the same envelope again.
    expect(await replica().process(env, ACME)).toBeNull();
    expect(flow.runs).toHaveLength(1);
    const replies = bus.publishes.filter((p) => p.subject === EGRESS);
    expect(replies).toHaveLength(2);
    expect(replies[1]!.opts.msgId).toBe(replies[0]!.opts.msgId);
    expect(replies[1]!.data).toEqual(replies[0]!.data);
    expect(bus.egress()).toHaveLength(1);
  });

  it('past the delivery limit: a message it processed is acknowledged, its stored replies re-published; one it never processed is refused, not run', async () => {
    const { store, bus, flow, replica } = deployment(true);
    const done = envelope('m-1', 'hi');
    // Committed, then the replica died as it published: the replies are still in the record.
    bus.failOn = (subject) => (subject === EGRESS ? new Error('replica died') : undefined);
    await expect(replica().process(done, ACME)).rejects.toThrow('replica died');
    bus.failOn = undefined;

    expect(await replica().process(done, ACME, { pastLimit: true })).toBeNull();
    expect(bus.egress()).toMatchObject([{ id: 'm-1:reply', status: 'parked' }]);

    const never = envelope('m-2', 'Ann');
    const refused = replica().process(never, ACME, { pastLimit: true });
    await expect(refused).rejects.toBeInstanceOf(DeliveryLimitError);
    await expect(refused).rejects.toMatchObject({ code: 'max_deliveries', details: { retryable: false } });
    expect(isPermanentError(await refused.catch((e: unknown) => e))).toBe(true);
    // Neither ran the flow again, nor wrote the session.
    expect(flow.runs.map((r) => r.message.id)).toEqual(['m-1']);
    expect(store.commits).toHaveLength(1);
    expect(bus.egress()).toHaveLength(1);
  });

  it('with a store that dies with the process, keeps no replies: one commit per message, the id alone remembered', async () => {
    const { store, bus, replica } = deployment(false);
    const env = envelope('m-1', 'hi');
    await replica().process(env, ACME);
    expect(store.commits).toHaveLength(1);
    expect(store.commits[0]!.record.processed).toEqual([{ id: 'm-1', at: expect.any(Number) }]);
    expect(bus.egress()).toHaveLength(1);
  });

  it('with a durable store, commits the replies with the state in one write, the last of the message', async () => {
    const { store, bus, replica } = deployment(true);
    const out = await replica().process(envelope('m-1', 'hi'), ACME);
    expect(store.commits).toHaveLength(1);
    const [only] = store.commits;
    expect(only!.record.processed?.[0]?.egress).toEqual(out);
    expect(only!.record.snapshot).toMatchObject({ nodeId: 'ask' });
    expect(only).toMatchObject({ expectedVersion: 0, options: { last: true } });
    expect(bus.egress()).toEqual([out]);
  });

  it("drops a message's stored replies with the session's next commit once their publish landed, without a write of its own", async () => {
    const { store, replica } = deployment(true);
    const p = replica();
    await p.process(envelope('m-1', 'hi'), ACME);
    expect(store.commits[0]!.record.processed?.[0]?.egress).toBeDefined();
    await p.process(envelope('m-2', 'Ann'), ACME);
    expect(store.commits).toHaveLength(2);
    const [m1, m2] = store.commits[1]!.record.processed!;
    expect(m1).toEqual({ id: 'm-1', at: expect.any(Number) });
    expect(m2?.egress).toBeDefined();
  });

  it('under a partition fence: takes no session lock, loads and commits under the fence', async () => {
    const { store, bus, replica } = deployment(true);
    const fence: OwnershipFence = { partition: 3, epoch: 7, lease: 'owners:g:p3', token: 'r1@7' };
    let exclusive = 0;
    const runExclusive = store.runExclusive.bind(store);
    store.runExclusive = (t, k, fn) => {
      exclusive++;
      return runExclusive(t, k, fn);
    };
    const out = await replica().process(envelope('m-1', 'hi'), ACME, { fence, replyTo: REPLY_TO });
    expect(exclusive).toBe(0);
    expect(store.commits[0]!.options).toEqual({ fence, last: true });
    expect(bus.answers()).toEqual([out]);
    await replica().process(envelope('m-2', 'Ann'), ACME);
    expect(exclusive).toBe(1);
  });

  it('publishes nothing when the partition has a newer owner: the commit is refused and the error propagates', async () => {
    const { store, bus, replica } = deployment(true);
    const fence: OwnershipFence = { partition: 3, epoch: 7, lease: 'owners:g:p3', token: 'r1@7' };
    store.beforeCommit = () => {
      throw new OwnershipLostError(3, 7);
    };
    await expect(
      replica().process(envelope('m-1', 'hi'), ACME, { fence, replyTo: REPLY_TO }),
    ).rejects.toBeInstanceOf(OwnershipLostError);
    expect(bus.publishes).toEqual([]);
  });

  it("runs two messages of one session arriving at once one after the other, the second on the first's state", async () => {
    const { store, bus, flow, replica } = deployment();
    const [a, b] = await Promise.all([
      replica().process(envelope('m-1', 'hi'), ACME),
      replica().process(envelope('m-2', 'Ann'), ACME),
    ]);
    expect(a?.status).toBe('parked');
    expect(b).toMatchObject({ status: 'completed', replies: [{ text: 'Hello, Ann' }] });
    expect(flow.runs.map((r) => r.message.id)).toEqual(['m-1', 'm-2']);
    expect((await store.load(ACME.tenant, a!.sessionKey))?.data).toEqual({ turns: 2 });
    expect(bus.egress().map((e) => e.inReplyTo)).toEqual(['m-1', 'm-2']);
  });
});

describe('MessageProcessor tenancy', () => {
  it('refuses a channel of another tenant than the one it was built for, before touching a session', async () => {
    const { store, flow, replica } = deployment();
    const other = fakeChannel('webhook', {}, 'globex', 'main');
    const env = { ...envelope('m-1', 'hi'), tenant: 'globex', sessionKey: 'globex:webhook:u:u' };
    await expect(replica().process(env, other)).rejects.toBeInstanceOf(TenancyMismatchError);
    expect(flow.runs).toHaveLength(0);
    expect(await store.load(other.tenant, env.sessionKey)).toBeNull();
  });
});
