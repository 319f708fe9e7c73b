/**
 * Lua run atomically by Redis. ioredis's `defineCommand` sends each by EVALSHA (EVAL only the
 * first time on a connection, or after a restarted Redis answers NOSCRIPT), so the text crosses
 * the wire once per connection.
 *
 * Keys of one session share a hash tag (`{sessionKey}`), so they live in one Redis Cluster slot.
 */

/**
 * KEYS[1] session hash, KEYS[2] session lease, KEYS[3] partition lease. ARGV: expected version,
 * record JSON (without its processed ids), ttl ms, session fencing token ('' outside a session
 * lease), '1' to release the session lease with the write (the holder's last one), partition owner
 * token ('' when not fenced by ownership), 'full' or 'delta', n, then n processed fields as
 * field/JSON pairs to set, then the processed fields to delete (deleted first, then set). 'full':
 * every other `p:` field goes (the caller did not know what the hash held). Returns {1, newVersion} | {0, currentVersion}
 * (version moved) | {-1, current} (the session lease is no longer ours) | {-2, current} (the
 * partition has a newer owner): a stale holder must not write.
 */
export const COMMIT_LUA = `
if ARGV[6] ~= '' and redis.call('GET', KEYS[3]) ~= ARGV[6] then return {-2, 0} end
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then return {0, cur} end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return {-1, cur} end
local nv = cur + 1
local last = 8 + 2 * tonumber(ARGV[8])
if ARGV[7] == 'full' then
  local keep = {}
  for i = 9, last, 2 do keep[ARGV[i]] = true end
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'p:' and not keep[f] then redis.call('HDEL', KEYS[1], f) end
  end
end
if #ARGV > last then redis.call('HDEL', KEYS[1], unpack(ARGV, last + 1)) end
redis.call('HSET', KEYS[1], 'v', nv, 'r', ARGV[2], unpack(ARGV, 9, last))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] == '1' and ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
return {1, nv}
`;

/**
 * KEYS[1] lease, KEYS[2] fence counter, KEYS[3] session hash. ARGV: lease ms, counter ttl ms,
 * random suffix. Returns {1, token, the session hash as HGETALL gives it} when acquired (the
 * session comes along, saving the load's round trip), {0, pttl} when held by someone else. The token is the counter
 * value (monotonic per session) plus a random suffix (unique even if the counter expired).
 */
export const ACQUIRE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local token = n .. ':' .. ARGV[3]
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return {1, token, redis.call('HGETALL', KEYS[3])}
`;

/** KEYS[1] lease. ARGV: token, lease ms. 1 if still ours and extended, else 0. */
export const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** KEYS[1] lease. ARGV: token. Deletes the lease only if it is still ours. */
export const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Partition ownership (src/core/partition-ownership.ts). Time is Redis's own (TIME), so replicas
 * with drifting clocks agree on who is alive.
 *
 * KEYS[1] the group's member set (score: heartbeat deadline), KEYS[2..] leases this replica holds.
 * ARGV: replica, ttl ms, then the token of each held lease. Returns {members, indexes of the held
 * leases (1-based) that are no longer ours}; the others are extended by the ttl.
 */
export const OWNER_TICK_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('PEXPIRE', KEYS[1], ttl * 10)
local lost = {}
for i = 2, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ttl)
  else
    lost[#lost + 1] = i - 1
  end
end
return {redis.call('ZRANGE', KEYS[1], 0, -1), lost}
`;

/**
 * KEYS[1] a partition's unfinished tail. ARGV: ack floor, last delivered sequence, ttl ms. Returns
 * how many take-overs in a row found the floor at this sequence (0, and forgotten, when nothing
 * was unfinished).
 */
export const OWNER_CARRY_LUA = `
if tonumber(ARGV[2]) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) return 0 end
local cur = redis.call('GET', KEYS[1])
local n = 1
if cur then
  local floor, count = string.match(cur, '^(%d+):(%d+)$')
  if floor == ARGV[1] then n = tonumber(count) + 1 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. n, 'PX', ARGV[3])
return n
`;

/**
 * KEYS[1] lease, KEYS[2] epoch counter. ARGV: replica, ttl ms. Returns {1, token, epoch} when
 * claimed (a new epoch, also when this replica held it before a restart), {0, holder} while
 * another replica holds it. The counter never expires: epochs only grow.
 */
export const OWNER_CLAIM_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, #ARGV[1] + 1) ~= ARGV[1] .. '@' then return {0, cur} end
local e = redis.call('INCR', KEYS[2])
local token = ARGV[1] .. '@' .. e
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return {1, token, e}
`;
