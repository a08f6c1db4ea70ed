import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';

/** KEYS: counter. ARGV: ttl ms. */
const ENTER = new LuaScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return n
`);

/**
 * One waiter leaves; reports whether it was the last one and the job has not
 * started (so nobody will ever read its answer). KEYS: counter, job record.
 */
const LEAVE = new LuaScript(`
local n = redis.call('DECR', KEYS[1])
if n > 0 then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], 'status') == 'queued' then return 1 end
return 0
`);

/**
 * Who is waiting on a sync job, counted in Redis because identical sync
 * requests on several gateway pods share one job. The counter's TTL outlasts
 * the longest wait (SYNC_TIMEOUT_MS), so a gateway that dies mid-wait leaves
 * a count that lapses instead of one that pins the job forever; until then,
 * such a job runs rather than being cancelled, the safe direction.
 *
 * Async jobs never get a counter: they never carry sync requests, and only
 * their owner's DELETE cancels them.
 */
export class SyncWaiters {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlMs: number,
  ) {}

  async enter(jobId: string): Promise<void> {
    await ENTER.run(this.redis, [this.keys.syncWaiters(jobId)], [this.ttlMs]);
  }

  /** True when this was the last waiter and the job is still queued: the caller should cancel it. */
  async leave(jobId: string): Promise<boolean> {
    return (await LEAVE.run(this.redis, [this.keys.syncWaiters(jobId), this.keys.job(jobId)], [])) === 1;
  }
}
