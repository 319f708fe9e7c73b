import { randomBytes } from 'node:crypto';
import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { OwnershipLostError, SessionConflictError } from '../../common/errors.js';
import type { OwnershipFence } from '../../core/partition-ownership.js';
import { tenantKey, type TenantCtx } from '../../core/tenant-ctx.js';
import type {
  CommitOptions,
  SessionRecord,
  SessionStore,
  SessionStoreHealth,
} from '../../core/session-store.js';
import {
  asStoreError,
  SessionBusyError,
  SessionLeaseLostError,
  SessionStoreUnavailableError,
} from './redis-errors.js';
import { ACQUIRE_LUA, COMMIT_LUA, RELEASE_LUA, RENEW_LUA } from './redis-scripts.js';
import {
  hashOf,
  processedWrite,
  readSessionHash,
  type StoredRecord,
  type StoredSession,
} from './redis-session-hash.js';
import { RedisPartitionLeases } from './redis-partition-leases.js';

export interface RedisSessionStoreOptions {
  url: string;
  /** Every key starts with `{prefix}:{tenant}/{env}/{team}:`. */
  prefix: string;
  /** Lease length; renewed every third of it while the holder runs. */
  leaseMs: number;
  /** How long to wait for a lease held elsewhere before giving up (the message is then retried). */
  leaseWaitMs?: number;
  commandTimeoutMs?: number;
  connectionName?: string;
  /** Most sessions the partition owner keeps cached (see `load`). */
  cacheMax?: number;
}

/** A session as this replica last wrote or read it, under the ownership it ran with. */
interface Cached extends StoredSession {
  /** The owner token (`replica@epoch`) it is valid under. */
  token: string;
}

interface Lease {
  id: string;
  token: string;
  lost: boolean;
  /** Given back by the holder's last commit: nothing left to release. */
  released?: boolean;
  /** The session hash as read when the lease was taken; the first load under the lease uses it. */
  prefetched?: Record<string, string>;
  /** The session as last loaded or committed under the lease: the commit writes what changed. */
  known?: StoredSession;
}

/** The Lua commands defineCommand adds to the client. */
interface Scripted {
  gtCommit(
    session: string,
    lease: string,
    partitionLease: string,
    expected: number,
    json: string,
    ttlMs: number,
    token: string,
    release: '1' | '0',
    ownerToken: string,
    mode: 'full' | 'delta',
    fieldsToSet: number,
    ...fields: string[]
  ): Promise<[number, number]>;
  gtAcquire(
    lease: string,
    fence: string,
    session: string,
    leaseMs: number,
    fenceTtlMs: number,
    nonce: string,
  ): Promise<[number, number | string, string[]?]>;
  gtRenew(lease: string, token: string, leaseMs: number): Promise<number>;
  gtRelease(lease: string, token: string): Promise<number>;
}

const FENCE_TTL_MS = 7 * 24 * 3600 * 1000;
const HEALTH_TIMEOUT_MS = 1_000;

/**
 * Sessions in Redis (ioredis). A session is one hash (`v` version, `r` record JSON, a `p:` field
 * per processed id: redis-session-hash.ts) with the channel's TTL: loading is one HGETALL,
 * committing is one Lua compare-and-set on `v` that writes what changed. Keys are
 * prefixed per tenant/env/team, so two tenants never share a key; nothing on the message path
 * lists keys.
 *
 * `runExclusive` takes a per-session lease in Redis (SET NX PX through a script that hands out a
 * fencing token), renews it while the work runs, and keeps it by session while held: the commit
 * script refuses a write whose token is no longer the lease holder's, so a replica that stalled
 * past its lease cannot overwrite what the next holder stored. In this process at most one lease
 * per session is held at a time (contenders queue locally first), so a map finds it without
 * AsyncLocalStorage, whose promise hooks would tax every promise of the process before Node 24.
 */
export class RedisSessionStore implements SessionStore, OnApplicationShutdown {
  readonly kind = 'redis';
  readonly durable = true;
  private readonly logger = new Logger(RedisSessionStore.name);
  private readonly redis: Redis & Scripted;
  private readonly held = new Map<string, Lease>();
  private readonly localTails = new Map<string, Promise<unknown>>();
  private readonly leaseWaitMs: number;
  /** Sessions of the partitions this replica owns, least recently used first. */
  private readonly cache = new Map<string, Cached>();
  private readonly cacheMax: number;
  private partitionLeases?: RedisPartitionLeases;
  private closed = false;

  private constructor(
    private readonly options: RedisSessionStoreOptions,
    redis: Redis,
  ) {
    this.leaseWaitMs = options.leaseWaitMs ?? options.leaseMs * 2;
    this.cacheMax = options.cacheMax ?? 10_000;
    redis.defineCommand('gtCommit', { numberOfKeys: 3, lua: COMMIT_LUA });
    redis.defineCommand('gtAcquire', { numberOfKeys: 3, lua: ACQUIRE_LUA });
    redis.defineCommand('gtRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand('gtRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    this.redis = redis as Redis & Scripted;
    let down = false;
    redis.on('error', (e: Error) => {
      if (!down) this.logger.warn({ err: e.message }, 'Redis connection error; reconnecting');
      down = true;
    });
    redis.on('ready', () => {
      if (down) this.logger.log({}, 'Redis reconnected');
      down = false;
    });
  }

  /** Connects (failing start-up with a message naming the URL when Redis is unreachable). */
  static async connect(options: RedisSessionStoreOptions): Promise<RedisSessionStore> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      connectionName: options.connectionName ?? 'greentic-runner',
      // Commands wait in the offline queue across short blips; a longer outage fails them fast
      // and the bus retries the message in place.
      maxRetriesPerRequest: 2,
      commandTimeout: options.commandTimeoutMs ?? 3_000,
      retryStrategy: (times) => Math.min(50 * times, 1_000),
      connectTimeout: 3_000,
      // Commands issued in the same tick (many messages at once) go out in one write.
      enableAutoPipelining: true,
    });
    // Until the store listens itself: keeps ioredis from printing "Unhandled error event", and
    // keeps the socket's reason (ECONNREFUSED...), which connect() reports as "Connection is closed".
    let cause: Error | undefined;
    const early = (e: Error): void => {
      cause = e;
    };
    redis.on('error', early);
    try {
      await redis.connect();
      await redis.ping();
    } catch (e) {
      redis.disconnect();
      throw new SessionStoreUnavailableError(
        `cannot connect to Redis at ${redactUrl(options.url)}: ${(cause ?? (e as Error)).message}`,
      );
    }
    redis.off('error', early);
    return new RedisSessionStore(options, redis);
  }

  /** Key base of one session: tenant prefix plus the session key as hash tag. */
  private base(tenant: TenantCtx, key: string): string {
    return `${this.options.prefix}:${tenantKey(tenant)}:{${key}}`;
  }

  /**
   * Under a fence, a session this replica wrote or read under the same owner token comes from
   * memory: no other replica can have written it since (their commits need the current token), so
   * the partition owner's turns cost no read. A new epoch (ownership moved and came back) misses.
   */
  async load(tenant: TenantCtx, key: string, fence?: OwnershipFence): Promise<SessionRecord | null> {
    const base = this.base(tenant, key);
    const lease = this.held.get(base);
    const cached = fence ? this.cache.get(base) : undefined;
    if (cached && cached.token === fence!.token) {
      this.cache.delete(base);
      this.cache.set(base, cached);
      return recordOf(cached.record, key, cached.version);
    }
    let hash: Record<string, string>;
    if (lease?.prefetched) {
      // Read atomically with taking the lease, and nobody else can write while we hold it.
      hash = lease.prefetched;
      lease.prefetched = undefined;
    } else {
      hash = await this.call(() => this.redis.hgetall(`${base}:s`));
    }
    const stored = readSessionHash(hash);
    if (lease) lease.known = stored ?? undefined;
    if (!stored) return null;
    if (!fence) return { ...stored.record, key, version: stored.version };
    this.remember(base, { ...stored, token: fence.token });
    return recordOf(stored.record, key, stored.version);
  }

  async commit(
    tenant: TenantCtx,
    record: SessionRecord,
    expectedVersion: number,
    ttlSeconds: number,
    options?: CommitOptions,
  ): Promise<number> {
    const base = this.base(tenant, record.key);
    const lease = this.held.get(base);
    const release = options?.last === true && lease !== undefined;
    const fence = options?.fence;
    const { key: _key, version: _version, processed, ...head } = record;
    head.updatedAt = new Date().toISOString();
    // What the hash holds, when this replica knows it entry by entry: the session as it loaded or
    // last committed it, at the version the commit expects (a compare-and-set keeps it so).
    const known = fence ? this.cache.get(base) : lease?.known;
    const exact =
      known !== undefined &&
      known.exact &&
      known.version === expectedVersion &&
      (!fence || (known as Cached).token === fence.token);
    const fields = processedWrite(exact ? (known.record.processed ?? []) : undefined, processed);
    const [status, version] = await this.call(() =>
      this.redis.gtCommit(
        `${base}:s`,
        `${base}:lease`,
        fence?.lease ?? `${base}:s`,
        expectedVersion,
        JSON.stringify(head),
        Math.max(1, Math.round(ttlSeconds * 1000)),
        lease?.token ?? '',
        release ? '1' : '0',
        fence?.token ?? '',
        fields.full ? 'full' : 'delta',
        fields.set.length / 2,
        ...fields.set,
        ...fields.del,
      ),
    );
    if (status === 1) {
      if (release) lease.released = true;
      const stored: StoredRecord = processed ? { ...head, processed } : head;
      // The hash now holds exactly this record's entries: the next commit writes what changes.
      const written: StoredSession = { version, record: stored, exact: true };
      if (lease) lease.known = written;
      if (fence) this.remember(base, { ...written, token: fence.token });
      return version;
    }
    this.cache.delete(base);
    if (lease) lease.known = undefined;
    if (status === -2) throw new OwnershipLostError(fence!.partition, fence!.epoch);
    if (status === -1) {
      if (lease) lease.lost = true;
      throw new SessionLeaseLostError(record.key);
    }
    throw new SessionConflictError(record.key);
  }

  async delete(tenant: TenantCtx, key: string): Promise<void> {
    const base = this.base(tenant, key);
    this.cache.delete(base);
    await this.call(() => this.redis.del(`${base}:s`));
  }

  async runExclusive<T>(tenant: TenantCtx, key: string, fn: () => Promise<T>): Promise<T> {
    const base = this.base(tenant, key);
    // Contenders in this process queue here instead of polling Redis for the lease.
    return this.local(base, async () => {
      const lease = await this.acquire(base, key);
      const every = Math.max(100, Math.floor(this.options.leaseMs / 3));
      const renew = setInterval(() => {
        this.redis.gtRenew(`${base}:lease`, lease.token, this.options.leaseMs).then(
          (ok) => {
            if (ok !== 1 && !lease.lost) {
              lease.lost = true;
              this.logger.warn(
                { tenant: tenant.tenantId, session: key },
                'session lease lost while running; its commit will be refused',
              );
            }
          },
          () => undefined,
        );
      }, every);
      try {
        this.held.set(base, lease);
        return await fn();
      } finally {
        if (this.held.get(base) === lease) this.held.delete(base);
        clearInterval(renew);
        if (!lease.released)
          await this.redis.gtRelease(`${base}:lease`, lease.token).catch((e: unknown) => {
            // It expires on its own; the next holder waits at most its remaining TTL.
            this.logger.warn(
              { tenant: tenant.tenantId, session: key, err: (e as Error).message },
              'lease release failed',
            );
          });
      }
    });
  }

  async markProcessed(
    tenant: TenantCtx,
    key: string,
    messageId: string,
    windowSeconds: number,
  ): Promise<boolean> {
    const r = await this.call(() =>
      this.redis.set(
        this.idKey(tenant, key, messageId),
        '1',
        'EX',
        Math.max(1, Math.round(windowSeconds)),
        'NX',
      ),
    );
    return r === 'OK';
  }

  async isProcessed(tenant: TenantCtx, key: string, messageId: string): Promise<boolean> {
    return (await this.call(() => this.redis.exists(this.idKey(tenant, key, messageId)))) === 1;
  }

  async health(): Promise<SessionStoreHealth> {
    const details: Record<string, unknown> = {
      kind: this.kind,
      connection: this.redis.status,
      prefix: this.options.prefix,
    };
    if (this.closed || this.redis.status !== 'ready') return { up: false, details };
    const t0 = performance.now();
    try {
      let timer: NodeJS.Timeout | undefined;
      const pong = await Promise.race([
        this.redis.ping(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no PONG within ${HEALTH_TIMEOUT_MS} ms`)),
            HEALTH_TIMEOUT_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      details['pingMs'] = Math.round((performance.now() - t0) * 100) / 100;
      return { up: pong === 'PONG', details };
    } catch (e) {
      return { up: false, details: { ...details, error: (e as Error).message } };
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await Promise.race([this.redis.quit(), new Promise((r) => setTimeout(r, 2_000))]);
    } catch {
      // quit fails when the connection is already gone; disconnect below is enough.
    }
    this.redis.disconnect();
  }

  /** After the bus has drained (in-flight messages still commit), so not on module destroy. */
  onApplicationShutdown(): Promise<void> {
    return this.close();
  }

  private remember(base: string, cached: Cached): void {
    this.cache.delete(base);
    this.cache.set(base, cached);
    if (this.cache.size > this.cacheMax) this.cache.delete(this.cache.keys().next().value!);
  }

  /** Partition leases on this store's connection: a commit checks them in the same script. */
  leases(): RedisPartitionLeases {
    return (this.partitionLeases ??= new RedisPartitionLeases(this.redis, this.options.prefix));
  }

  /** Sessions held in the owner's cache now. */
  get cached(): number {
    return this.cache.size;
  }

  private idKey(tenant: TenantCtx, key: string, messageId: string): string {
    return `${this.base(tenant, key)}:id:${messageId}`;
  }

  private async acquire(base: string, key: string): Promise<Lease> {
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      const [ok, value, hash] = await this.call(() =>
        this.redis.gtAcquire(
          `${base}:lease`,
          `${base}:fence`,
          `${base}:s`,
          this.options.leaseMs,
          FENCE_TTL_MS,
          randomBytes(6).toString('hex'),
        ),
      );
      if (ok === 1) return { id: base, token: String(value), lost: false, prefetched: hashOf(hash) };
      const waited = Date.now() - started;
      if (waited >= this.leaseWaitMs) throw new SessionBusyError(key, waited);
      const pttl = Number(value);
      const backoff = Math.min(200, 5 * 2 ** attempt);
      await new Promise((r) => setTimeout(r, Math.max(1, Math.min(backoff, pttl > 0 ? pttl : backoff))));
    }
  }

  private local<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.localTails.get(id) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.localTails.set(id, tail);
    return run.finally(() => {
      if (this.localTails.get(id) === tail) this.localTails.delete(id);
    });
  }

  private async call<T>(op: () => Promise<T>): Promise<T> {
    if (this.closed) throw new SessionStoreUnavailableError('session store is closed');
    try {
      return await op();
    } catch (e) {
      throw asStoreError(e);
    }
  }
}

/** A cached record for one run: its own snapshot and data, the (never changed) processed list shared. */
function recordOf(stored: StoredRecord, key: string, version: number): SessionRecord {
  const out: SessionRecord = {
    key,
    version,
    snapshot:
      stored.snapshot === null || stored.snapshot === undefined ? null : structuredClone(stored.snapshot),
    data: isEmpty(stored.data) ? {} : structuredClone(stored.data),
    updatedAt: stored.updatedAt,
  };
  if (stored.processed) out.processed = stored.processed;
  return out;
}

function isEmpty(o: Record<string, unknown> | undefined): boolean {
  for (const _ in o) return false;
  return true;
}

function redactUrl(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}
