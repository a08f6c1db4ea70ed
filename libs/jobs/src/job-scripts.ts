import { LuaScript } from './lua-script';

/**
 * The job store's Lua scripts. Each one checks and writes a job record and
 * its event stream, and announces the new entry on the job's sharded channel
 * (SPUBLISH), in one step: what makes "one result per job" and "only the
 * current run writes" hold when runs overlap. They touch only the keys of
 * one job, all tagged with its id (`RedisKeys`), so on a Redis Cluster each
 * runs on the shard that owns the job; the shared indexes (pending jobs, a
 * tenant's recent jobs) are written by separate commands, in an order that
 * leaves nothing unswept after a crash (see JobStore).
 */

/**
 * Indexes a job about to be created, in the shared slot: pending (for the
 * sweeper) and first on its tenant's recent list (trimmed, for the console);
 * nothing when the id is already pending. Runs before the record exists, so that a crash
 * in between leaves an id the sweeper drops, never a record it cannot find.
 * KEYS: pending index, recent list. ARGV: id, created at, list length, list ttl. Reply: 1 indexed, 0 already.
 */
export const INDEX_NEW = new LuaScript(
  `
if redis.call('ZADD', KEYS[1], 'NX', ARGV[2], ARGV[1]) == 0 then return 0 end
redis.call('LPUSH', KEYS[2], ARGV[1])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[2], ARGV[4])
return 1
`,
  { batch: true },
);

/**
 * Creates the record and its first event unless the id exists, and gives both
 * a TTL from the start (so that a job no event ever ends still goes away).
 * KEYS: record, stream, channel. ARGV: event, record ttl, fields…
 * Reply: 1 created, 0 the id exists.
 */
export const CREATE = new LuaScript(
  `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
`,
  { batch: true },
);

/**
 * A run claims the job: queued or running → running, with a new attempt
 * number. `claim` (BullMQ's count of the job's claims) must be above the
 * record's attempt, so a run that lost its claim before it got here cannot
 * take the job back from the run that replaced it; an empty claim takes the
 * next number. The caller then drops the job from the pending index.
 * KEYS: record, stream, channel. ARGV: event, started at, claim.
 * Reply: {outcome, status before, attempt}.
 */
export const START = new LuaScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
local st = h[1]
if not st then return {'missing', '', 0} end
local cur = tonumber(h[2] or '0')
if st ~= 'queued' and st ~= 'running' then return {'rejected', st, cur} end
local nxt = cur + 1
if ARGV[3] ~= '' then
  nxt = tonumber(ARGV[3])
  if nxt <= cur then return {'superseded', st, cur} end
end
redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', nxt, 'started_at', ARGV[2])
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[1])
return {'ok', st, nxt}
`);

const MOVE = `
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
local st = h[1]
if not st then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[1], '[^,]+') do if s == st then allowed = true end end
if not allowed then return {'rejected', st} end
if ARGV[5] ~= '' and h[2] ~= ARGV[5] then return {'superseded', st} end
redis.call('HSET', KEYS[1], 'status', ARGV[2])
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {'ok', st}
`;

/**
 * Moves the job if its status is one of `from` and, when `attempt` is given,
 * only for the run that holds that attempt; appends the event, announces it,
 * and sets the finished TTL (0 = keep).
 * KEYS: record, stream, channel.
 * ARGV: allowed-from (comma list), new status, event, ttl, attempt ('' = any run), fields…
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
 * KEYS: record, stream, channel. ARGV: event, attempt.
 * Batched: the tokens a decode step yields for its jobs arrive together, and
 * the per-token command is most of what a token costs Redis (`npm run
 * bench:redis`); on a Cluster the batch splits by job slot.
 */
export const APPEND_IF_CURRENT = new LuaScript(
  `
local h = redis.call('HMGET', KEYS[1], 'status', 'attempt')
if h[1] ~= 'running' or h[2] ~= ARGV[2] then return false end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[1])
return id
`,
  { batch: true },
);

/**
 * Sweeps one pending job: a record still queued whose queue job does not
 * exist (`enqueued` = '0', checked by the caller just before: the queue lives
 * in another slot) fails with the given error. The caller then drops the id
 * from the index, whatever the reply.
 * KEYS: record, stream, channel. ARGV: event, ttl, finished at, error JSON, enqueued ('1'/'0').
 * Reply: 'lost' when this call failed the job, 'enqueued', or the record's status ('missing' when gone).
 */
export const SWEEP_PENDING = new LuaScript(`#!lua flags=allow-oom
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'queued' then return st or 'missing' end
if ARGV[5] == '1' then return 'enqueued' end
redis.call('HSET', KEYS[1], 'status', 'failed', 'error', ARGV[4], 'finished_at', ARGV[3])
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[1])
redis.call('SPUBLISH', KEYS[3], id .. ' ' .. ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 'lost'
`);
