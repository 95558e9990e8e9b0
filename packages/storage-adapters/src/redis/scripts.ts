import { createHash } from 'node:crypto'
import type { RedisArgument, RedisConnection } from './connection.js'

/*
 * Every write runs as one Lua script, so Redis applies it atomically: a value, its modification
 * time and its entry in the directory index change together, and a crash or a dropped
 * connection can never leave one without the others (no repair pass, unlike pberkel's
 * caddy-storage-redis). Scripts only touch keys passed in KEYS, all under one hash tag, so they
 * also run on Redis Cluster.
 *
 * Layout: KEYS[1] hash key -> value, KEYS[2] hash key -> mtime (ms, server clock),
 * KEYS[3] sorted set of every key, all scores 0, so ZRANGEBYLEX lists a directory.
 * Keys are ASCII, so '\255' sorts after anything under a prefix.
 */

export interface Script { source: string, sha: string }

function script (source: string): Script {
  return { source, sha: createHash('sha1').update(source).digest('hex') }
}

/** ARGV: key, value, change channel */
export const PUT = script(`
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)))
redis.call('ZADD', KEYS[3], 0, ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[1])
return 1`)

/** ARGV: key (deleted with everything under key/), change channel. Returns how many values went. */
export const DELETE = script(`
local gone = {}
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then gone[1] = ARGV[1] end
local under = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[1] .. '/', '(' .. ARGV[1] .. '/\\255')
for i = 1, #under do gone[#gone + 1] = under[i] end
redis.call('ZREM', KEYS[3], ARGV[1])
for i = 1, #gone, 500 do
  local batch = { unpack(gone, i, math.min(i + 499, #gone)) }
  redis.call('HDEL', KEYS[1], unpack(batch))
  redis.call('HDEL', KEYS[2], unpack(batch))
  redis.call('ZREM', KEYS[3], unpack(batch))
end
for i = 1, #gone do redis.call('PUBLISH', ARGV[2], gone[i]) end
return #gone`)

/**
 * ARGV: directory. Returns its direct children (values and sub-directories), skipping over each
 * sub-directory's range in O(log n) instead of walking every key below it.
 */
export const LIST_CHILDREN = script(`
local base = ARGV[1] .. '/'
local hi = '(' .. base .. '\\255'
local cursor = '[' .. base
local out = {}
while true do
  local r = redis.call('ZRANGEBYLEX', KEYS[1], cursor, hi, 'LIMIT', 0, 1)
  if #r == 0 then break end
  local slash = string.find(r[1], '/', #base + 1, true)
  if slash then
    local dir = string.sub(r[1], 1, slash - 1)
    out[#out + 1] = dir
    cursor = '(' .. dir .. '/\\255'
  else
    out[#out + 1] = r[1]
    cursor = '(' .. r[1]
  end
end
return out`)

/** ARGV: key. Returns {size, mtime} for a value, {-1} for a directory, nil for neither. */
export const STAT = script(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return { redis.call('HSTRLEN', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[2], ARGV[1]) }
end
local under = redis.call('ZRANGEBYLEX', KEYS[3], '[' .. ARGV[1] .. '/', '(' .. ARGV[1] .. '/\\255', 'LIMIT', 0, 1)
if #under > 0 then return { -1 } end
return false`)

/*
 * Locks (redis.io distributed-locks pattern, single instance): the lock key holds a random
 * token and expires by itself after the lease; only the token's owner can extend or delete
 * it. The fence counter lives beside it under the same hash tag and is bumped in the same
 * script as the SET, so a fence is handed out exactly once per acquisition.
 */

/** KEYS: lock, fence. ARGV: token, ttl ms. Returns the new fence, or nil when held. */
export const ACQUIRE = script(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return redis.call('INCR', KEYS[2]) end
return false`)

/** KEYS: lock. ARGV: token, ttl ms. Returns 1 when extended, 0 when the token no longer owns it. */
export const RENEW = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`)

/** KEYS: lock. ARGV: token, release channel, lock name. Deletes only our own lock, then wakes waiters. */
export const RELEASE = script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], ARGV[3])
  return 1
end
return 0`)

/** EVALSHA, falling back to EVAL when the server does not have the script cached yet (NOSCRIPT). */
export async function runScript (
  conn: RedisConnection,
  s: Script,
  keys: string[],
  args: RedisArgument[],
  opts: { timeoutMs?: number } = {}
): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args]
  try {
    return await conn.send(['EVALSHA', s.sha, ...tail], opts)
  } catch (err) {
    if (!String((err as Error).message).startsWith('NOSCRIPT')) throw err
    return await conn.send(['EVAL', s.source, ...tail], opts)
  }
}
