import { Logger } from '@nestjs/common';
import { Redis } from 'ioredis';
import { CoordinationUnavailableError } from './rate-limit.errors.js';
import type { BucketRequest, RateDecision, RateLimitStore } from './rate-limiter.js';

/**
 * Takes `cost` tokens from every bucket in KEYS, or from none. One round trip; the clock is the
 * Redis server's (TIME), so replicas with skewed clocks share one notion of refill.
 *
 * ARGV[1] = cost; then per key: rate, per_ms, burst.
 * Returns { allowed (0|1), retry_after_ms, remaining }.
 */
export const TAKE_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local tokens = {}
local wait = 0
for i = 1, #KEYS do
  local rate = tonumber(ARGV[(i - 1) * 3 + 2])
  local per = tonumber(ARGV[(i - 1) * 3 + 3])
  local burst = tonumber(ARGV[(i - 1) * 3 + 4])
  local h = redis.call('HMGET', KEYS[i], 'tk', 'at')
  local tk = tonumber(h[1])
  local at = tonumber(h[2])
  if tk == nil or at == nil then
    tk = burst
  else
    local elapsed = now - at
    if elapsed < 0 then elapsed = 0 end
    tk = math.min(burst, tk + elapsed * rate / per)
  end
  tokens[i] = tk
  if tk < cost then
    local need = math.ceil((cost - tk) * per / rate)
    if need > wait then wait = need end
  end
end
if wait > 0 then
  return { 0, wait, 0 }
end
local remaining = -1
for i = 1, #KEYS do
  local rate = tonumber(ARGV[(i - 1) * 3 + 2])
  local per = tonumber(ARGV[(i - 1) * 3 + 3])
  local burst = tonumber(ARGV[(i - 1) * 3 + 4])
  local left = tokens[i] - cost
  redis.call('HSET', KEYS[i], 'tk', tostring(left), 'at', now)
  -- Once full again the bucket is indistinguishable from a missing one: let it expire then.
  redis.call('PEXPIRE', KEYS[i], math.ceil(burst * per / rate) + 1000)
  if remaining < 0 or left < remaining then remaining = left end
end
return { 1, 0, math.floor(remaining) }
`;

interface Scripted {
  gtRateTake(...args: (string | number)[]): Promise<[number, number, number]>;
}

export interface RedisRateLimitOptions {
  url: string;
  commandTimeoutMs?: number;
}

/** Token buckets in Redis, shared by every replica: the limit holds across all of them. */
export class RedisRateLimitStore implements RateLimitStore {
  readonly kind = 'redis';
  private readonly logger = new Logger(RedisRateLimitStore.name);

  private constructor(private readonly redis: Redis & Scripted) {}

  /** Connects and pings, so a wrong REDIS_URL stops the start instead of silently disabling limits. */
  static async connect(options: RedisRateLimitOptions): Promise<RedisRateLimitStore> {
    const redis = new Redis(options.url, {
      lazyConnect: true,
      connectionName: 'greentic-ratelimit',
      // A limit check must not hold a webhook: fail fast, the service then lets the message through.
      maxRetriesPerRequest: 1,
      commandTimeout: options.commandTimeoutMs ?? 500,
      retryStrategy: (times) => Math.min(50 * times, 1_000),
      connectTimeout: 3_000,
    });
    redis.defineCommand('gtRateTake', { lua: TAKE_LUA });
    // Connection errors before the store exists surface through connect() below, with the
    // socket's reason (connect() itself rejects with "Connection is closed").
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
        `rate limits: cannot connect to Redis at ${options.url.replace(/\/\/[^@/]*@/, '//[redacted]@')}: ${(cause ?? (e as Error)).message}`,
      );
    }
    const store = new RedisRateLimitStore(redis as Redis & Scripted);
    redis.off('error', early);
    redis.on('error', (e: Error) =>
      store.logger.warn({ err: e.message }, 'Redis (rate limits) connection error'),
    );
    return store;
  }

  async take(requests: readonly BucketRequest[], cost = 1): Promise<RateDecision> {
    if (requests.length === 0) return { allowed: true, retryAfterMs: 0, remaining: Number.POSITIVE_INFINITY };
    const args: (string | number)[] = [requests.length, ...requests.map((r) => r.key), cost];
    for (const r of requests) args.push(r.policy.rate, r.policy.perMs, r.policy.burst);
    try {
      const [allowed, retryAfterMs, remaining] = await this.redis.gtRateTake(...args);
      return { allowed: allowed === 1, retryAfterMs, remaining };
    } catch (e) {
      throw new CoordinationUnavailableError(`rate limit check failed: ${(e as Error).message}`);
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
