import { LuaScript } from '@fastvlm/jobs';

/*
 * Every script touches one batch's keys only (one hash slot on a Cluster):
 * KEYS[1] record, KEYS[2] in-flight requests, KEYS[3] unflushed result lines,
 * KEYS[4] line offsets, KEYS[5] output parts, KEYS[6] error parts.
 * In-flight values: `j<ms>|<custom id>` a job was (or is being) submitted at
 * that time; `r<ms>|<custom id>` the request waits to be (re)submitted then.
 * Result values: `o` + output line, or `e` + error line.
 */

/**
 * validating → in_progress with the request count and the byte offset of every
 * `OFFSET_EVERY`th line. ARGV: total, at, offsets…. Reply: 1, or 0 when the
 * batch is no longer validating (cancelled meanwhile).
 */
export const START = new LuaScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'validating' then return 0 end
redis.call('DEL', KEYS[4])
for i = 3, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[4], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', KEYS[1], 'status', 'in_progress', 'total', ARGV[1], 'in_progress_at', ARGV[2], 'next', 0)
return 1
`);

/**
 * Moves the status from one of a list to another and stamps its time field.
 * ARGV: to, time field, at, from…. Reply: 1, or 0 when the status was none of them.
 */
export const TRANSITION = new LuaScript(`
local st = redis.call('HGET', KEYS[1], 'status')
for i = 4, #ARGV do
  if st == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[2], ARGV[3])
    return 1
  end
end
return 0
`);

/**
 * Claims the next requests for feeding: only while in progress and only from
 * the cursor the caller read (another runner may have moved it).
 * ARGV: expected cursor, now, custom id of each claimed request….
 * Reply: 1; -1 not in progress; -2 cursor moved.
 */
export const CLAIM = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'next')
if h[1] ~= 'in_progress' then return -1 end
if h[2] ~= ARGV[1] then return -2 end
local from = tonumber(ARGV[1])
for i = 3, #ARGV do
  redis.call('HSET', KEYS[2], from + i - 3, 'j' .. ARGV[2] .. '|' .. ARGV[i])
end
redis.call('HSET', KEYS[1], 'next', from + #ARGV - 2)
return 1
`);

/** Sets an in-flight request's state and time, keeping its custom id, only while it is in flight. ARGV: index, state and time (`j<ms>`, `r<ms>`). */
export const SET_INFLIGHT = new LuaScript(`
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. string.sub(v, (string.find(v, '|', 1, true))))
return 1
`);

/**
 * Records a request's outcome exactly once: only the call that takes it out of
 * flight writes its line and counts it. ARGV: index, 'o'|'e', line, prompt
 * tokens, completion tokens. Reply: 1 recorded, 0 already recorded.
 */
export const RECORD = new LuaScript(
  `
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2] .. ARGV[3])
if ARGV[2] == 'o' then
  redis.call('HINCRBY', KEYS[1], 'completed', 1)
else
  redis.call('HINCRBY', KEYS[1], 'failed', 1)
end
redis.call('HINCRBY', KEYS[1], 'prompt_tokens', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'completion_tokens', ARGV[5])
return 1
`,
  { batch: true },
);

/**
 * Ends requests that were never fed (expired or cancelled batch) with error
 * lines, from the cursor the caller read. ARGV: expected cursor, lines….
 * Reply: 1, or 0 when the cursor moved.
 */
export const SKIP = new LuaScript(`
local from = tonumber(ARGV[1])
if redis.call('HGET', KEYS[1], 'next') ~= ARGV[1] then return 0 end
for i = 2, #ARGV do
  redis.call('HSET', KEYS[3], from + i - 2, 'e' .. ARGV[i])
end
redis.call('HINCRBY', KEYS[1], 'failed', #ARGV - 1)
redis.call('HSET', KEYS[1], 'next', from + #ARGV - 1)
return 1
`);

/**
 * Notes a flushed segment and drops its lines, only if no other runner flushed
 * segment `seq` first. ARGV: seq, output part ('' none), error part ('' none), indices….
 * Reply: 1, or 0 when another flush got there first (the caller deletes its blobs).
 */
export const FLUSHED = new LuaScript(`
if (redis.call('HGET', KEYS[1], 'flush_seq') or '0') ~= ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('RPUSH', KEYS[5], ARGV[2]) end
if ARGV[3] ~= '' then redis.call('RPUSH', KEYS[6], ARGV[3]) end
for i = 4, #ARGV, 1000 do
  redis.call('HDEL', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HINCRBY', KEYS[1], 'flush_seq', 1)
return 1
`);

/**
 * The end: from one of the listed statuses to a final one, with the output and
 * error files, dropping the working keys and giving the record its TTL.
 * ARGV: to, time field, at, output file id ('' none), error file id ('' none), ttl s, from….
 * Reply: 1, or 0 when the status was none of them.
 */
export const FINISH = new LuaScript(`
local st = redis.call('HGET', KEYS[1], 'status')
for i = 7, #ARGV do
  if st == ARGV[i] then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], ARGV[2], ARGV[3])
    if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'output_file_id', ARGV[4]) end
    if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'error_file_id', ARGV[5]) end
    redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6])
    redis.call('EXPIRE', KEYS[1], ARGV[6])
    return 1
  end
end
return 0
`);

/** Lease renewal: only by its holder. KEYS: lease. ARGV: token, ms. */
export const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`);

/** Lease release: only by its holder. KEYS: lease. ARGV: token. */
export const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`);
