import { LuaScript } from './lua-script';

/**
 * The job store's Lua scripts. Each one checks and writes a job record, its
 * event stream and the pending index in one step, which is what makes "one
 * result per job" and "only the current run writes" hold when runs overlap.
 */

/**
 * Creates the record and its first event unless the id exists, gives both a
 * TTL from the start (so that a job no event ever ends still goes away),
 * indexes the id as pending, puts it first on the tenant's recent list
 * (trimmed, for the console), and refreshes the TTL of the key the job depends
 * on (its stored image), reporting whether that key exists, in one round trip.
 * KEYS: record, stream, recent list, pending index, dependency (optional).
 * ARGV: channel, event, list length, list ttl, dependency ttl, record ttl, id, created at, fields…
 * Reply: {created (0/1), dependency found (0/1)}.
 */
export const CREATE = new LuaScript(
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local found = 0
if #KEYS > 4 then found = redis.call('EXPIRE', KEYS[5], ARGV[5]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 9))
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7])
redis.call('LPUSH', KEYS[3], ARGV[7])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
return {1, found}
`,
  { batch: true },
);

/**
 * A run claims the job: queued or running → running, with a new attempt
 * number. `claim` (BullMQ's count of the job's claims) must be above the
 * record's attempt, so a run that lost its claim before it got here cannot
 * take the job back from the run that replaced it; an empty claim takes the
 * next number. Claimed jobs leave the pending index.
 * KEYS: record, stream, pending index. ARGV: channel, event, started at, claim, id.
 * Reply: {outcome, status before, attempt}.
 */
export const START = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
local st = h[1]
if not st then return {'missing', '', 0} end
local cur = tonumber(h[2] or '0')
if st ~= 'queued' and st ~= 'running' then return {'rejected', st, cur} end
local nxt = cur + 1
if ARGV[4] ~= '' then
  nxt = tonumber(ARGV[4])
  if nxt <= cur then return {'superseded', st, cur} end
end
redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', nxt, 'started_at', ARGV[3])
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[5])
return {'ok', st, nxt}
`);

const MOVE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
local st = h[1]
if not st then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == st then allowed = true end end
if not allowed then return {'rejected', st} end
if ARGV[6] ~= '' and h[2] ~= ARGV[6] then return {'superseded', st} end
redis.call('HSET', KEYS[1], 'status', ARGV[3])
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[4])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
if ARGV[7] ~= '' then redis.call('ZREM', KEYS[3], ARGV[7]) end
return {'ok', st}
`;

/**
 * Moves the job if its status is one of `from` and, when `attempt` is given,
 * only for the run that holds that attempt; appends the event, announces it,
 * sets the finished TTL (0 = keep) and leaves the pending index (id given).
 * KEYS: record, stream, pending index.
 * ARGV: channel, allowed-from (comma list), new status, event, ttl, attempt ('' = any run), id ('' = keep indexed), fields…
 * Reply: {outcome, status before}.
 */
export const MOVE_TO = new LuaScript(MOVE);

/**
 * The same move for the transitions that end a job without a result (failed,
 * cancelled) or put it back: they may run while Redis is at `maxmemory`
 * (they add a few bytes and start a TTL), so that a job ends even then.
 */
export const MOVE_TO_ALLOW_OOM = new LuaScript(`#!lua flags=allow-oom\n${MOVE}`);

/**
 * Appends a token event for the run that holds `attempt` while the job runs;
 * false for any other run, or once the job is no longer running.
 * KEYS: record, stream. ARGV: channel, event, attempt.
 */
export const APPEND_IF_CURRENT = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if h[1] ~= 'running' or h[2] ~= ARGV[3] then return false end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`);

/**
 * Sweeps one pending id: a record still queued whose queue job does not exist
 * fails with the given error; any other id leaves the index (claimed, ended,
 * expired, or safely in the queue, where the queue's own events take over).
 * KEYS: record, stream, pending index, queue job hash.
 * ARGV: channel, event, ttl, id, finished at, error JSON.
 * Reply: 'lost' when this call failed the job, 'enqueued', or the record's status ('missing' when gone).
 */
export const SWEEP_PENDING = new LuaScript(`#!lua flags=allow-oom
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' then
  redis.call('ZREM', KEYS[3], ARGV[4])
  return st or 'missing'
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('ZREM', KEYS[3], ARGV[4])
  return 'enqueued'
end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[6], 'finished_at', ARGV[5])
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[4])
return 'lost'
`);
