/**
 * Lua run atomically by Redis. ioredis's `defineCommand` sends each by EVALSHA (EVAL only the
 * first time on a connection, or after a restarted Redis answers NOSCRIPT), so the text crosses
 * the wire once per connection.
 *
 * Keys of one session share a hash tag (`{sessionKey}`), so they live in one Redis Cluster slot.
 */

/**
 * KEYS[1] session hash, KEYS[2] lease. ARGV: expected version, record JSON, ttl ms, fencing token
 * ('' outside a lease), '1' to release the lease with the write (the holder's last one). Returns
 * {1, newVersion} | {0, currentVersion} (version moved) | {-1, current} (the lease is no longer
 * ours: a stale holder must not write).
 */
export const COMMIT_LUA = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[1]) then return {0, cur} end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[4] then return {-1, cur} end
local nv = cur + 1
redis.call('HSET', KEYS[1], 'v', nv, 'r', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[5] == '1' and ARGV[4] ~= '' then redis.call('DEL', KEYS[2]) end
return {1, nv}
`;

/**
 * KEYS[1] lease, KEYS[2] fence counter, KEYS[3] session hash. ARGV: lease ms, counter ttl ms,
 * random suffix. Returns {1, token, version, recordJson} when acquired (the session comes along,
 * saving the load's round trip), {0, pttl} when held by someone else. The token is the counter
 * value (monotonic per session) plus a random suffix (unique even if the counter expired).
 */
export const ACQUIRE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, redis.call('PTTL', KEYS[1])} end
local n = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local token = n .. ':' .. ARGV[3]
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
local s = redis.call('HMGET', KEYS[3], 'v', 'r')
return {1, token, s[1], s[2]}
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
