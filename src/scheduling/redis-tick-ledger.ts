import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CoordinationUnavailableError } from '../ratelimit/rate-limit.errors.js';
import type { Claim, TickLedger } from './tick-ledger.js';

/** A timer's slot outlives any gap between ticks; a timer removed from the bundle leaves it to expire. */
const RETENTION_MS = 30 * 24 * 3600 * 1000;

/**
 * The claim rules of MemoryTickLedger in one Lua script per call, against the Redis server's clock.
 * Hash fields: done (last confirmed tick), cur (tick under lease), until (lease end), fence, owner.
 * ARGV: tick, owner, lease_ms, retention_ms. Returns {code, a, b}:
 *   0 won (a = fence) · 1 done · 2 busy (a = retry in ms, b = held tick) · 3 abandoned (b = tick).
 */
const CLAIM_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tick = tonumber(ARGV[1])
local h = redis.call('HMGET', KEYS[1], 'done', 'cur', 'until')
local done = tonumber(h[1]) or -1
if tick <= done then return { 1, 0, 0 } end
local cur = tonumber(h[2])
if cur ~= nil then
  local untl = tonumber(h[3]) or 0
  if cur > tick then return { 1, 0, 0 } end
  if untl > now then return { 2, untl - now, cur } end
  if cur < tick then return { 3, 0, cur } end
end
local fence = redis.call('HINCRBY', KEYS[1], 'fence', 1)
redis.call('HSET', KEYS[1], 'cur', tick, 'until', now + tonumber(ARGV[3]), 'owner', ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
return { 0, fence, 0 }
`;

/** ARGV: tick, fence, lease_ms. 1 when the lease was extended, 0 when fenced out. */
const RENEW_LUA = `
local h = redis.call('HMGET', KEYS[1], 'cur', 'fence')
if tonumber(h[1]) ~= tonumber(ARGV[1]) or tonumber(h[2]) ~= tonumber(ARGV[2]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'until', now + tonumber(ARGV[3]))
return 1
`;

/** ARGV: tick, fence, retention_ms. 1 when confirmed, 0 when fenced out. */
const CONFIRM_LUA = `
local h = redis.call('HMGET', KEYS[1], 'cur', 'fence', 'done')
if tonumber(h[1]) ~= tonumber(ARGV[1]) or tonumber(h[2]) ~= tonumber(ARGV[2]) then return 0 end
local done = tonumber(h[3]) or -1
if tonumber(ARGV[1]) > done then redis.call('HSET', KEYS[1], 'done', ARGV[1]) end
redis.call('HDEL', KEYS[1], 'cur', 'until', 'owner')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
`;

interface Scripted {
  gtTickClaim(
    key: string,
    tick: number,
    owner: string,
    leaseMs: number,
    retentionMs: number,
  ): Promise<[number, number, number]>;
  gtTickRenew(key: string, tick: number, fence: number, leaseMs: number): Promise<number>;
  gtTickConfirm(key: string, tick: number, fence: number, retentionMs: number): Promise<number>;
}

/**
 * Timer claims in Redis, shared by every replica: a tick is claimed by exactly one of them. The
 * fencing token handed out with each claim is checked again when the lease is renewed and when the
 * tick is confirmed, so a replica that stalled past its lease cannot confirm over the replica that
 * took the tick over.
 */
export class RedisTickLedger implements TickLedger {
  readonly kind = 'redis';
  private readonly logger = new Logger(RedisTickLedger.name);

  private constructor(
    private readonly redis: Redis & Scripted,
    private readonly prefix: string,
  ) {}

  static async connect(url: string, prefix: string): Promise<RedisTickLedger> {
    const redis = new Redis(url, {
      lazyConnect: true,
      connectionName: 'greentic-timers',
      maxRetriesPerRequest: 2,
      commandTimeout: 2_000,
      retryStrategy: (times) => Math.min(50 * times, 1_000),
      connectTimeout: 3_000,
    });
    redis.defineCommand('gtTickClaim', { numberOfKeys: 1, lua: CLAIM_LUA });
    redis.defineCommand('gtTickRenew', { numberOfKeys: 1, lua: RENEW_LUA });
    redis.defineCommand('gtTickConfirm', { numberOfKeys: 1, lua: CONFIRM_LUA });
    // Keeps the socket's reason (ECONNREFUSED...): connect() itself rejects with "Connection is closed".
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
      throw new CoordinationUnavailableError(
        `timers: cannot connect to Redis at ${url.replace(/\/\/[^@/]*@/, '//[redacted]@')}: ${(cause ?? (e as Error)).message}`,
      );
    }
    const ledger = new RedisTickLedger(redis as Redis & Scripted, prefix);
    redis.off('error', early);
    redis.on('error', (e: Error) =>
      ledger.logger.warn({ err: e.message }, 'Redis (timers) connection error'),
    );
    return ledger;
  }

  /** `timer` is `tenant/env/timer`; the tenant is the hash tag, like every other key of the tenant. */
  private key(timer: string): string {
    const [tenant, ...rest] = timer.split('/');
    return `${this.prefix}:timer:{${tenant}}:${rest.join('/')}`;
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new CoordinationUnavailableError(`timer ${what} failed: ${(e as Error).message}`);
    }
  }

  async claim(timer: string, tick: number, owner: string, leaseMs: number): Promise<Claim> {
    const [code, a, b] = await this.call('claim', () =>
      this.redis.gtTickClaim(this.key(timer), tick, owner, leaseMs, RETENTION_MS),
    );
    switch (code) {
      case 0:
        return { status: 'won', fence: a };
      case 2:
        return { status: 'busy', tick: b, retryInMs: a };
      case 3:
        return { status: 'abandoned', tick: b };
      default:
        return { status: 'done' };
    }
  }

  async renew(timer: string, tick: number, fence: number, leaseMs: number): Promise<boolean> {
    return (
      (await this.call('renew', () => this.redis.gtTickRenew(this.key(timer), tick, fence, leaseMs))) === 1
    );
  }

  async confirm(timer: string, tick: number, fence: number): Promise<boolean> {
    return (
      (await this.call('confirm', () =>
        this.redis.gtTickConfirm(this.key(timer), tick, fence, RETENTION_MS),
      )) === 1
    );
  }

  async lastDone(timer: string): Promise<number | undefined> {
    const v = await this.call('read', () => this.redis.hget(this.key(timer), 'done'));
    return v === null ? undefined : Number(v);
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
