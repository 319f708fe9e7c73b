import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EgressMessage, MessageEnvelope } from '../src/core/message-envelope.js';
import { fairShare } from '../src/core/partition-ownership.js';
import { partitionFor } from '../src/messaging/nats/nats-subjects.js';
import {
  deleteRedisPrefix,
  deleteStreams,
  requireNats,
  requireRedis,
  SHARED_NATS_URL,
  SHARED_REDIS_URL,
  uniqueNatsNamespace,
  uniqueRedisPrefix,
} from './support/nats-redis-servers.js';
import {
  countBy,
  natsBusHealth,
  post,
  replicaBundle,
  sleep,
  StreamObserver,
  until,
  type NatsBusHealth,
} from './support/replicas.js';
import { monitorRedis } from './support/redis-monitor.js';
import { RunnerProcess } from './support/runner-process.js';

/**
 * Partition owners (issue #20) with three replica processes on the machine's NATS and Redis: one
 * owner per partition, session order with concurrency across sessions, one Redis command per
 * message at the owner, replies only where they are awaited, and what a kill -9 or a SIGSTOP past
 * the lease does. One set of replicas serves every test; the pause and the kill come last.
 */

const ns = uniqueNatsNamespace('owners');
const redisPrefix = uniqueRedisPrefix('owners');
const SP = ns.GREENTIC_NATS_SUBJECT_PREFIX;
const WEB = '/webhooks/webhook/demo/dev/default/web';
const PARTITIONS = 16;
const LEASE_MS = 2_000;
/** The heartbeat period a partitioned consumer uses for this lease (src/messaging/nats/partitioned-consumer.ts). */
const HEARTBEAT_MS = Math.max(100, Math.min(1_000, Math.floor(LEASE_MS / 4)));
/** Time for the claims themselves (Redis scripts, consumer creation) after the heartbeat that sees the lease gone. */
const CLAIM_ALLOWANCE_MS = 500;
/**
 * Fixed ids, so the rendezvous shares are the same every run. With 16 partitions rendezvous
 * hashing is lumpy for some id sets (owner-a/b/c get 2/5/9); these get 6/5/5.
 */
const IDS = ['replica-1', 'replica-2', 'replica-3'];

type BusDetails = NatsBusHealth;

/** Replicas taking traffic now (a killed one leaves it); `all` are stopped at the end. */
let replicas: RunnerProcess[] = [];
let all: RunnerProcess[] = [];
let egress: StreamObserver<EgressMessage>;
let ingress: StreamObserver<MessageEnvelope>;
let redis: Redis;
const logs = new Map<string, string[]>();

function env(id: string): Record<string, string | number> {
  return {
    GREENTIC_BUNDLE: bundle,
    GREENTIC_BUS: 'nats',
    GREENTIC_SESSIONS: 'redis',
    NATS_URL: SHARED_NATS_URL,
    REDIS_URL: SHARED_REDIS_URL,
    ...ns,
    GREENTIC_REDIS_PREFIX: redisPrefix,
    GREENTIC_NATS_PARTITIONS: PARTITIONS,
    GREENTIC_PARTITION_LEASE_MS: LEASE_MS,
    GREENTIC_REPLICA_ID: id,
    GREENTIC_NATS_ACK_WAIT_MS: 5_000,
    GREENTIC_NATS_BACKOFF_MS: 100,
    GREENTIC_SYNC_TIMEOUT_MS: 15_000,
  };
}
let bundle: string;

beforeAll(async () => {
  await requireNats();
  await requireRedis();
  bundle = replicaBundle();
  replicas = await Promise.all(IDS.map((id) => RunnerProcess.start(id, env(id))));
  all = [...replicas];
  for (const r of replicas) {
    const lines: string[] = [];
    logs.set(r.name, lines);
    r.onLine((l) => lines.push(l));
  }
  egress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_EGRESS`,
    `${SP}.greentic.messaging.egress.>`,
  );
  ingress = await StreamObserver.start(
    SHARED_NATS_URL,
    `${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`,
    `${SP}.greentic.messaging.ingress.>`,
  );
  redis = new Redis(SHARED_REDIS_URL);
  await until(async () => (await ownership()).fair, 'every partition owned, by fair shares', 30_000);
}, 120_000);

afterAll(async () => {
  // SIGKILL ends a stopped (SIGSTOP) process too.
  await Promise.all(all.map((r) => r.kill('SIGKILL')));
  await Promise.all([egress?.stop(), ingress?.stop()]);
  redis?.disconnect();
  await deleteStreams(SHARED_NATS_URL, ns.GREENTIC_NATS_STREAM_PREFIX);
  await deleteRedisPrefix(SHARED_REDIS_URL, redisPrefix);
});

/** The bus entry of a replica's /health (loopback: details included). */
function bus(r: RunnerProcess): Promise<BusDetails> {
  return natsBusHealth(r.url);
}

interface Ownership {
  /** group → partition → `{replica}@{epoch}` from the lease keys. */
  leases: Map<string, Map<number, string>>;
  /** group → partition → replicas that report owning it in /health. */
  reported: Map<string, Map<number, { replica: string; epoch: number }[]>>;
  /** Every group has a lease on every partition, one reporter each, agreeing with the lease. */
  complete: boolean;
  /**
   * Complete, and settled: each live replica owns its rendezvous share of the live replicas. A
   * complete ownership can still be mid-rebalance (a replica that joined last has not claimed yet).
   */
  fair: boolean;
}

/** The lease keys of every group and what each live replica's /health says it owns. */
async function ownership(live = replicas): Promise<Ownership> {
  const health = await Promise.all(live.map((r) => bus(r)));
  const groups = new Set(health.flatMap((h) => Object.keys(h.owned)));
  const leases = new Map<string, Map<number, string>>();
  const reported = new Map<string, Map<number, { replica: string; epoch: number }[]>>();
  let complete = groups.size > 0;
  for (const g of groups) {
    const keys = Array.from({ length: PARTITIONS }, (_, p) => `${redisPrefix}:owners:${g}:p${p}`);
    const values = await redis.mget(...keys);
    const byP = new Map<number, string>();
    values.forEach((v, p) => v && byP.set(p, v));
    leases.set(g, byP);
    const rep = new Map<number, { replica: string; epoch: number }[]>();
    for (const h of health)
      for (const o of h.owned[g] ?? [])
        rep.set(o.partition, [...(rep.get(o.partition) ?? []), { replica: h.replica, epoch: o.epoch }]);
    reported.set(g, rep);
    for (let p = 0; p < PARTITIONS; p++) {
      const owners = rep.get(p) ?? [];
      if (owners.length !== 1 || byP.get(p) !== `${owners[0]!.replica}@${owners[0]!.epoch}`) complete = false;
    }
  }
  const ids = health.map((h) => h.replica).sort();
  const fair =
    complete &&
    [...groups].every((g) =>
      health.every(
        (h) =>
          JSON.stringify((h.owned[g] ?? []).map((o) => o.partition)) ===
          JSON.stringify(fairShare(ids, h.replica, PARTITIONS)),
      ),
    );
  return { leases, reported, complete, fair };
}

const sessionKey = (user: string) => `demo:webhook:${user}:${user}`;
const partitionOfUser = (user: string) => partitionFor(sessionKey(user), PARTITIONS);

/** Fire-and-forget post; when a replica does not take it (killed), the next one gets the same message. */
async function deliver(
  first: number,
  body: { userId: string; text: string; messageId: string },
  targets = replicas,
) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const target = targets[(first + attempt) % targets.length]!;
    const ok = await fetch(`${target.url}${WEB}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).then(
      (r) => r.status === 202,
      () => false,
    );
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`message ${body.messageId} was never accepted`);
}

/** Runs `n` workers over `jobs` (at most n at once). */
async function pool<T>(jobs: T[], n: number, work: (job: T, worker: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      while (next < jobs.length) await work(jobs[next++]!, w);
    }),
  );
}

/** The ingress consumer group (the runner's queue), whatever its pattern hash. */
const INGRESS_GROUP = /^greentic-runner_/;

/** Lease keys of every group whose value names `replica`. */
async function leasesHeldBy(groups: string[], replica: string): Promise<string[]> {
  const out: string[] = [];
  for (const g of groups) {
    const keys = Array.from({ length: PARTITIONS }, (_, p) => `${redisPrefix}:owners:${g}:p${p}`);
    const values = await redis.mget(...keys);
    values.forEach((v, p) => {
      if (v?.startsWith(`${replica}@`)) out.push(keys[p]!);
    });
  }
  return out;
}

describe('partition owners with three replica processes', () => {
  it('gives every partition exactly one owner: the lease keys and every replica agree, shares are fair', async () => {
    const { leases, reported } = await ownership();
    const health = await Promise.all(replicas.map((r) => bus(r)));
    expect(health.map((h) => h.replica)).toEqual(IDS);
    expect([...leases.keys()].some((g) => INGRESS_GROUP.test(g))).toBe(true);
    for (const [group, byP] of leases) {
      const rep = reported.get(group)!;
      for (let p = 0; p < PARTITIONS; p++) {
        const owners = rep.get(p) ?? [];
        expect(owners, `${group} partition ${p}: one owner`).toHaveLength(1);
        expect(byP.get(p), `${group} partition ${p}: the lease names it`).toBe(
          `${owners[0]!.replica}@${owners[0]!.epoch}`,
        );
      }
      // The union is every partition; each replica's share is its rendezvous share of the members.
      const shares = health.map((h) => (h.owned[group] ?? []).map((o) => o.partition));
      expect(shares.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: PARTITIONS }, (_, p) => p));
      for (let i = 0; i < IDS.length; i++) expect(shares[i]).toEqual(fairShare(IDS, IDS[i]!, PARTITIONS));
      for (const s of shares)
        expect(s.length).toBeGreaterThanOrEqual(Math.floor(PARTITIONS / IDS.length / 2));
      const members = await redis.zrange(`${redisPrefix}:owners:${group}:members`, '0', '-1');
      expect(members.sort()).toEqual(IDS);
      console.log(
        `[owners] ${group}: shares of ${PARTITIONS} partitions ${shares.map((s) => s.length).join('/')}`,
      );
    }
  });

  it('has no egress consumer group for webhook channels without callback_url (nothing to send)', async () => {
    const groups = new Set(
      (await Promise.all(replicas.map((r) => bus(r)))).flatMap((h) => Object.keys(h.owned)),
    );
    expect([...groups].filter((g) => !INGRESS_GROUP.test(g))).toEqual([]);
  });

  it('delivers each ?wait=true reply to exactly one replica, the one that accepted the call: over NATS from another owner, in process from itself', async () => {
    const nc: NatsConnection = await connect({ servers: SHARED_NATS_URL });
    // A waiting replica gets its replies as the one egress publish that names it (the last token of
    // the egress wire subject; `_`: nobody waits), or on its own reply subject.
    const deliveries: { to: string; inReplyTo: string }[] = [];
    const record = (to: string, m: Msg) => {
      if (to !== '_') deliveries.push({ to, inReplyTo: m.json<{ inReplyTo: string }>().inReplyTo });
    };
    const subs = [
      nc.subscribe(`${SP}.greentic.messaging.reply.>`, {
        callback: (_err, m) => record(m.subject.split('.').pop()!, m),
      }),
      nc.subscribe(`${SP}.greentic.messaging.egress.*.*.*.*.*.*`, {
        callback: (_err, m) => record(m.subject.split('.').pop()!, m),
      }),
    ];
    await nc.flush();
    try {
      const N = 30;
      const acceptedBy = new Map<string, string>();
      const ownedBy = new Map<string, string>();
      await pool(
        Array.from({ length: N }, (_, i) => i),
        6,
        async (i) => {
          const r = replicas[i % 3]!;
          const id = `wait-${i}`;
          acceptedBy.set(id, r.name);
          ownedBy.set(
            id,
            IDS.find((x) => fairShare(IDS, x, PARTITIONS).includes(partitionOfUser(`waiter${i}`)))!,
          );
          const res = await post(r.url, WEB, { userId: `waiter${i}`, text: 'hi', messageId: id });
          expect(res.status, JSON.stringify(res.body)).toBe(200);
          expect(res.body.replies?.length).toBeGreaterThan(0);
        },
      );
      // Sessions owned by every replica, each called through every replica: replies crossed replicas,
      // and some were run where they were awaited.
      expect(new Set(ownedBy.values()).size).toBe(3);
      const crossed = [...acceptedBy.keys()].filter((id) => ownedBy.get(id) !== acceptedBy.get(id));
      expect(crossed.length).toBeGreaterThan(0);
      expect(crossed.length).toBeLessThan(N);
      await nc.flush();
      await sleep(500);
      // On the wire: one delivery per crossed reply, to the replica that accepted the call. A reply
      // run by the replica that holds the call (answered 200 above) never went out to a replica.
      const counts = countBy(deliveries, (d) => d.inReplyTo);
      expect([...counts.keys()].sort()).toEqual(crossed.sort());
      expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
      for (const d of deliveries) expect(d.to).toBe(acceptedBy.get(d.inReplyTo));
    } finally {
      for (const sub of subs) sub.unsubscribe();
      await nc.close();
    }
  });

  it('costs exactly one Redis command per message of a cached session at its owner (MONITOR)', async () => {
    const user = 'monitored';
    const tag = `{${sessionKey(user)}}`;
    // The first message loads the session into the owner's cache (and commits it).
    const first = await post(replicas[0]!.url, WEB, { userId: user, text: 'hi', messageId: 'mon-0' });
    expect(first.status).toBe(200);
    const seen: { args: string[]; source: string }[] = [];
    const monitor = await monitorRedis(SHARED_REDIS_URL, ({ args, source }) => seen.push({ args, source }));
    const N = 10;
    try {
      // Through every replica: the accepting one never touches the session, its owner does.
      for (let i = 1; i <= N; i++) {
        const res = await post(replicas[i % 3]!.url, WEB, {
          userId: user,
          text: i % 2 === 1 ? `Town${i}` : 'hi',
          messageId: `mon-${i}`,
        });
        expect(res.status).toBe(200);
        if (i % 2 === 1) expect(res.body.replies?.[0]?.text).toMatch(new RegExp(`^Weather for Town${i}: `));
      }
      await sleep(300);
    } finally {
      await monitor.stop();
    }
    // MONITOR also lists the commands a script runs (source "lua"): a round trip is a client's command.
    const touching = seen.filter((c) => c.source !== 'lua' && c.args.some((a) => a.includes(tag)));
    const inScripts = seen.filter((c) => c.source === 'lua' && c.args.some((a) => a.includes(tag)));
    console.log(
      `[owners] MONITOR: ${touching.length} commands on the session's keys for ${N} messages ` +
        `(${[...new Set(touching.map((c) => c.args[0]))].join(',')}; inside the script: ${inScripts.map((c) => c.args[0]).join(',')}; ` +
        `${seen.filter((c) => c.source !== 'lua').length} client commands in all, heartbeats included)`,
    );
    expect(touching.map((c) => c.args[0]!.toLowerCase())).toEqual(Array.from({ length: N }, () => 'evalsha'));
    // All from one connection: the owner's.
    expect(new Set(touching.map((c) => c.source)).size).toBe(1);
  });

  it('answers 200 sessions x 5 messages in publish order per session, with more than 16 handlers running at once', async () => {
    const SESSIONS = 200;
    const texts = (s: number) => ['hi', `City${s}`, 'hi', `Town${s}`, 'hi'];
    const ids = (s: number) => texts(s).map((_, t) => `o${s}-t${t + 1}`);
    const started = Date.now();
    // Turn by turn: every session's turn t is accepted before its turn t+1 is sent (publish order),
    // and all 200 sessions have a turn queued at once.
    for (let t = 0; t < 5; t++)
      await pool(
        Array.from({ length: SESSIONS }, (_, s) => s),
        50,
        (s, w) => deliver(w + t, { userId: `ord${s}`, text: texts(s)[t]!, messageId: ids(s)[t]! }),
      );
    const sentMs = Date.now() - started;
    const expected = Array.from({ length: SESSIONS }, (_, s) => ids(s)).flat();
    const want = new Set(expected);
    await until(
      () => egress.messages.filter((m) => want.has(m.data.inReplyTo)).length >= expected.length,
      'a reply to each of the 1000 messages',
      60_000,
    );
    const doneMs = Date.now() - started;
    const mine = egress.messages.filter((m) => want.has(m.data.inReplyTo));
    const counts = countBy(mine, (m) => m.data.inReplyTo);
    expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
    expect(counts.size).toBe(expected.length);
    // Each session's replies on egress (stream order) follow its messages' publish order, and each
    // turn saw the state the one before left.
    for (let s = 0; s < SESSIONS; s++) {
      const replies = mine
        .filter((m) => m.data.sessionKey === sessionKey(`ord${s}`))
        .sort((a, b) => a.seq - b.seq);
      expect(replies.map((m) => m.data.inReplyTo)).toEqual(ids(s));
      expect(replies[1]!.data.replies[0]?.text).toMatch(new RegExp(`^Weather for City${s}: `));
      expect(replies[3]!.data.replies[0]?.text).toMatch(new RegExp(`^Weather for Town${s}: `));
    }
    const health = await Promise.all(replicas.map((r) => bus(r)));
    const peaks = health.map((h) => `${h.replica}: running ${h.peakRunning}, held ${h.peakInflight}`);
    console.log(
      `[owners] 1000 messages: sent in ${sentMs} ms, all answered in ${doneMs} ms; peaks ${peaks.join('; ')}`,
    );
    expect(Math.max(...health.map((h) => h.peakRunning))).toBeGreaterThan(16);
  });

  it('refuses the commits of a replica paused past its lease (SIGSTOP): its messages are answered once, by the new owner', async () => {
    const victim = replicas[2]!;
    const others = replicas.slice(0, 2);
    const before = await bus(victim);
    const group = Object.keys(before.owned).find((g) => INGRESS_GROUP.test(g))!;
    const fences = new Map(before.owned[group]!.map((o) => [o.partition, o.epoch]));
    expect(fences.size).toBeGreaterThan(0);
    const users = Array.from({ length: 400 }, (_, i) => `paused${i}`)
      .filter((u) => fences.has(partitionOfUser(u)))
      .slice(0, 80);
    const lost: string[] = [];
    victim.onLine((l) => {
      if (l.includes('partition lease lost')) lost.push(l);
    });
    // A burst for the victim's partitions through the other two; stopped halfway through.
    let accepted = 0;
    let stoppedAt = 0;
    let stopping: Promise<unknown> | undefined;
    await pool(users, 20, async (u, w) => {
      await deliver(w, { userId: u, text: 'hi', messageId: `${u}-1` }, others);
      if (++accepted === 40 && !stoppedAt) {
        stoppedAt = Date.now();
        process.kill(victim.pid, 'SIGSTOP');
        stopping = sleep(200);
      }
    });
    await stopping;
    // What the stopped replica holds: delivered to its consumers, not acked (server state, frozen now).
    const jsm = await jetstreamManager(egress.connection);
    const stream = `${ns.GREENTIC_NATS_STREAM_PREFIX}_INGRESS`;
    const heldSeqs: number[] = [];
    for (const [p, epoch] of fences) {
      const info = await jsm.consumers.info(stream, `${group}_p${p}_e${epoch}`);
      const partitionSubject = new RegExp(`\\.p${p}$`);
      for (const m of ingress.messages)
        if (
          m.seq > info.ack_floor.stream_seq &&
          m.seq <= info.delivered.stream_seq &&
          partitionSubject.test(m.subject)
        )
          heldSeqs.push(m.seq);
    }
    const answeredAtStop = new Set(egress.messages.map((m) => m.data.inReplyTo));
    const held = ingress.messages
      .filter((m) => heldSeqs.includes(m.seq) && !answeredAtStop.has(m.data.id))
      .map((m) => m.data.id);
    expect(held.length, 'messages the paused replica had taken and not finished').toBeGreaterThan(0);
    // Every message of the burst, held or still queued, is answered while the victim is stopped:
    // by the partitions' new owners.
    const burst = users.map((u) => `${u}-1`);
    await until(
      () => burst.every((id) => egress.messages.some((m) => m.data.inReplyTo === id)),
      'replies to the burst from the new owners',
      LEASE_MS * 5,
    );
    const answeredMs = Date.now() - stoppedAt;
    // Its partitions have new owners under newer epochs.
    const leases = await redis.mget(...[...fences.keys()].map((p) => `${redisPrefix}:owners:${group}:p${p}`));
    for (const [i, [p, epoch]] of [...fences].entries()) {
      const [holder, e] = leases[i]!.split('@');
      expect(IDS.slice(0, 2), `partition ${p}`).toContain(holder);
      expect(Number(e)).toBeGreaterThan(epoch);
    }
    // Stay stopped past the lease, then continue, watching what it sends to Redis for those sessions.
    await sleep(Math.max(0, LEASE_MS + HEARTBEAT_MS - (Date.now() - stoppedAt)));
    const versions = async () =>
      Promise.all(users.map((u) => redis.hget(`${redisPrefix}:demo/dev/default:{${sessionKey(u)}}:s`, 'v')));
    const versionsBefore = await versions();
    const stale: string[][] = [];
    // This test's own reads of the versions are not the replica's.
    const own = /addr=(\S+)/.exec(String(await redis.client('INFO')))?.[1];
    const monitor = await monitorRedis(SHARED_REDIS_URL, ({ args, source }) => {
      if (source !== 'lua' && source !== own && args.some((a) => a.includes('{demo:webhook:paused')))
        stale.push(args);
    });
    const pausedMs = Date.now() - stoppedAt;
    process.kill(victim.pid, 'SIGCONT');
    const lostLines = () =>
      lost.map((l) => JSON.parse(l) as { group: string; partition: number; epoch: number });
    const allLost = () =>
      [...fences].every(([partition, epoch]) =>
        lostLines().some((l) => l.group === group && l.partition === partition && l.epoch === epoch),
      );
    await until(allLost, "the paused replica's 'partition lease lost' for each partition", 10_000);
    await sleep(1_000);
    await monitor.stop();
    // Whatever it tried to write after SIGCONT was refused: no session of the burst changed.
    expect(await versions()).toEqual(versionsBefore);
    // What it wrote for those sessions after SIGCONT were commits fenced by its old epochs (it may
    // also read a session for a message it takes up before its heartbeat tells it the lease is gone).
    const oldTokens = [...fences.values()].map((e) => `${victim.name}@${e}`);
    const staleWrites = stale.filter((args) => args[0]!.toLowerCase() !== 'hgetall');
    for (const args of staleWrites) {
      expect(args[0]!.toLowerCase()).toBe('evalsha');
      expect(args.some((a) => oldTokens.includes(a))).toBe(true);
    }
    // Every reply exactly once on egress, the held messages' included.
    const counts = countBy(
      egress.messages.filter((m) => burst.includes(m.data.inReplyTo)),
      (m) => m.data.inReplyTo,
    );
    expect([...counts].filter(([, n]) => n !== 1)).toEqual([]);
    expect(counts.size).toBe(burst.length);
    console.log(
      `[owners] SIGSTOP ${victim.name} (${fences.size} partitions) for ${pausedMs} ms: ${held.length} messages held ` +
        `of the burst of ${burst.length}, all ${burst.length} answered ${answeredMs} ms after the stop; ` +
        `after SIGCONT MONITOR saw ${staleWrites.length} refused session writes (and ${stale.length - staleWrites.length} reads), ${lost.length} 'partition lease lost'`,
    );
    // It rejoins: the others hand its rendezvous share back, one owner per partition again.
    await until(
      async () => {
        if (!(await ownership()).complete) return false;
        const shares = (await Promise.all(replicas.map((r) => bus(r)))).map((h) =>
          (h.owned[group] ?? []).map((o) => o.partition),
        );
        return IDS.every(
          (id, i) => JSON.stringify(shares[i]) === JSON.stringify(fairShare(IDS, id, PARTITIONS)),
        );
      },
      'the paused replica to own its fair share again',
      15_000,
    );
    console.log(
      `[owners] ${victim.name} owned its share again within ${Date.now() - stoppedAt - pausedMs} ms of SIGCONT`,
    );
  });

  it('moves a killed replica’s partitions to the others within the lease TTL plus one heartbeat, 0 lost, 0 duplicated', async () => {
    const victim = replicas[0]!;
    const groups = Object.keys((await bus(victim)).owned);
    const CONVERSATIONS = 60;
    const ids: string[] = [];
    let accepted = 0;
    let killedAt = 0;
    let movedMs = -1;
    let watching: Promise<void> | undefined;
    let victimLeases: string[] = [];
    await pool(
      Array.from({ length: CONVERSATIONS }, (_, c) => c),
      8,
      async (c, w) => {
        for (const [turn, text] of [
          [1, 'hi'],
          [2, `Kity${c}`],
        ] as const) {
          const messageId = `k${c}-t${turn}`;
          ids.push(messageId);
          await deliver(w + c, { userId: `killed${c}`, text, messageId });
          if (++accepted === CONVERSATIONS && !killedAt) {
            victimLeases = await leasesHeldBy(groups, victim.name);
            killedAt = Date.now();
            await victim.kill('SIGKILL');
            replicas = replicas.slice(1);
            // Poll the leases: moved when none names the victim and every one has an owner again.
            watching = (async () => {
              for (;;) {
                const values = await redis.mget(...victimLeases);
                if (values.every((v) => v !== null && !v.startsWith(`${victim.name}@`))) {
                  movedMs = Date.now() - killedAt;
                  return;
                }
                if (Date.now() - killedAt > 20_000) return;
                await sleep(10);
              }
            })();
          }
        }
      },
    );
    await watching;
    expect(killedAt).toBeGreaterThan(0);
    expect(victimLeases.length).toBeGreaterThan(0);
    await until(
      () => ids.every((id) => egress.messages.some((m) => m.data.inReplyTo === id)),
      'a reply to every message',
      60_000,
    );
    await sleep(1_000);
    const counts = countBy(
      egress.messages.filter((m) => ids.includes(m.data.inReplyTo)),
      (m) => m.data.inReplyTo,
    );
    const lostIds = ids.filter((id) => !counts.has(id));
    const duplicated = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
    console.log(
      `[owners] kill -9 ${victim.name}: its ${victimLeases.length} partitions moved in ${movedMs} ms ` +
        `(lease ${LEASE_MS} ms + heartbeat ${HEARTBEAT_MS} ms); ${ids.length} messages, ${lostIds.length} lost, ${duplicated.length} duplicated`,
    );
    expect({ lost: lostIds, duplicated }).toEqual({ lost: [], duplicated: [] });
    expect(movedMs).toBeGreaterThan(0);
    // Lease plus one heartbeat, and the claim's round trips on a machine shared with the rest of CI.
    expect(movedMs).toBeLessThanOrEqual(LEASE_MS + HEARTBEAT_MS + CLAIM_ALLOWANCE_MS);
    // The survivors own everything, by their rendezvous shares.
    await until(
      async () => (await ownership(replicas)).fair,
      'ownership settled on the survivors, by their fair shares',
      10_000,
    );
    const survivors = IDS.slice(1);
    for (const r of replicas) {
      const h = await bus(r);
      for (const g of groups)
        expect((h.owned[g] ?? []).map((o) => o.partition)).toEqual(
          fairShare(survivors, h.replica, PARTITIONS),
        );
    }
    for (let c = 0; c < CONVERSATIONS; c++) {
      const reply = egress.messages.find((m) => m.data.inReplyTo === `k${c}-t2`)!.data;
      expect(reply.replies[0]?.text, JSON.stringify(reply.error)).toMatch(
        new RegExp(`^Weather for Kity${c}: `),
      );
    }
  });
});
