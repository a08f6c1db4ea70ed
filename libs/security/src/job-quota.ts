import type { Redis } from 'ioredis';
import { AppError } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';
import { LimitExceeded, type LimitState } from './limit-error';
import type { TenantSettings } from './tenant-settings';

/**
 * Admits one job for a tenant, atomically across gateway pods:
 * - tokens: the job reserves its `max_tokens` in the tenant's tokens-per-window counter;
 * - in flight / queued: the tenant's unfinished jobs live in a sorted set
 *   (score = admission time). Counting is O(1) while the set is below both
 *   caps. At a cap the script answers {2} and the caller reads each member's
 *   job record (in the members' own slots: a script may only touch declared
 *   keys of one slot) and calls again with what it found, one letter per
 *   member: `q` queued, `r` running, `x` ended, `m` no record. Ended members
 *   are pruned, so no writer has to remember to decrement. A member without
 *   a record counts as queued for `grace` ms (its record is being written);
 *   one that joined after the read counts as queued. A record past its
 *   deadline counts as ended whatever its status says (the caller decides):
 *   a job that nobody will finish must not hold the slot until it expires.
 *   Statuses only move forward, so a status read a moment ago can only
 *   overcount, never admit past a cap.
 *
 * The tokens window is a hash {used, win}: `win` names the window (the id of
 * the job that opened it), so that a refund can tell whether the window its
 * reservation was made in still runs.
 *
 * Async and batch jobs (`counted` '0') reserve tokens only: they wait in
 * their pool's fair queue, whose own per-tenant cap bounds them.
 *
 * KEYS: tokens window, jobs set.
 * ARGV: tokens, tokens max, window ms, job id, now ms, max in flight, max queued, grace ms, set ttl ms, counted ('1'/'0'),
 *       then, on the second call, 'read' and (member, letter) pairs.
 * Reply: {1, '', used, ttl ms, live, queued, window id}, {0, limit name, value, retry ms} or {2} (read the members).
 */
const ADMIT = new LuaScript(`
local cost, maxT, win = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cur = redis.call('HMGET', KEYS[1], 'used', 'win')
local used = tonumber(cur[1] or '0')
local window = cur[2]
local ttl = redis.call('PTTL', KEYS[1])
local fresh = false
if ttl < 0 or not window then used = 0; ttl = win; fresh = true; window = ARGV[4] end
if used + cost > maxT then return {0, 'tenant_tokens', used, ttl} end
local maxIn, maxQ = tonumber(ARGV[6]), tonumber(ARGV[7])
local counted = ARGV[10] == '1'
local live = 0
if counted then live = redis.call('ZCARD', KEYS[2]) end
local queued = live
if counted and live >= math.min(maxIn, maxQ) then
  if ARGV[11] ~= 'read' then return {2} end
  local seen = {}
  for i = 12, #ARGV, 2 do seen[ARGV[i]] = ARGV[i + 1] end
  local now, grace = tonumber(ARGV[5]), tonumber(ARGV[8])
  local members = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
  live, queued = 0, 0
  for i = 1, #members, 2 do
    local id, at = members[i], tonumber(members[i + 1])
    local st = seen[id]
    if st == nil or st == 'q' or (st == 'm' and at > now - grace) then live = live + 1; queued = queued + 1
    elseif st == 'r' then live = live + 1
    else redis.call('ZREM', KEYS[2], id) end
  end
  if live >= maxIn then return {0, 'tenant_in_flight', live, 0} end
  if queued >= maxQ then return {0, 'tenant_queued', queued, 0} end
end
if fresh then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'used', cost, 'win', window)
  redis.call('PEXPIRE', KEYS[1], win)
else
  redis.call('HINCRBY', KEYS[1], 'used', cost)
end
if counted then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[9])
end
return {1, '', used + cost, ttl, live + 1, queued + 1, window}
`, { batch: true });

/**
 * Gives tokens back to the window they were reserved in, and only while it
 * runs: a refund landing in a later window would let that window admit more
 * than its limit. KEYS: tokens window. ARGV: tokens, window id.
 */
const REFUND = new LuaScript(`
if redis.call('HGET', KEYS[1], 'win') ~= ARGV[2] then return 0 end
local v = redis.call('HINCRBY', KEYS[1], 'used', -tonumber(ARGV[1]))
if v < 0 then redis.call('HSET', KEYS[1], 'used', 0) end
return 1
`);

export interface JobQuotaOptions {
  /** Length of the tokens window. Default 60 000 ms. */
  windowMs?: number;
  /** How long a reserved job without a record still counts. Default 30 000 ms. */
  graceMs?: number;
  /** Lifetime of an idle tenant's job set; should outlast the longest job. Default one day. */
  setTtlMs?: number;
  /** How long a client should wait after meeting an in-flight or queued cap. Default 2 000 ms. */
  busyRetryMs?: number;
}

/** A job's admission: what to give back if it never runs, or runs shorter than reserved. */
export interface JobReservation {
  tenant: string;
  jobId: string;
  tokens: number;
  /** The tokens window the reservation was made in; refunds go to it alone. */
  window: string;
}

export class JobQuota {
  private readonly windowMs: number;
  private readonly graceMs: number;
  private readonly setTtlMs: number;
  private readonly busyRetryMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** A job's record key (`RedisKeys.job`): its `status` and `deadline` say whether the job still holds a slot. */
    private readonly jobKey: (id: string) => string,
    opts: JobQuotaOptions = {},
  ) {
    this.windowMs = opts.windowMs ?? 60_000;
    this.graceMs = opts.graceMs ?? 30_000;
    this.setTtlMs = opts.setTtlMs ?? 86_400_000;
    this.busyRetryMs = opts.busyRetryMs ?? 2_000;
  }

  /** A hash {used, win}; named anew (it was a plain counter) so that an old counter never meets HMGET. */
  tokensKey(tenant: string): string {
    return `${this.prefix}:rl:tokens-window:${tenant}`;
  }
  jobsKey(tenant: string): string {
    return `${this.prefix}:jobs-of:${tenant}`;
  }

  /** Reserves tokens and a job slot, or throws: `LimitExceeded` (429), or `invalid_request` for a max_tokens that can never fit. */
  /** `counted` false: an async or batch job, which reserves tokens only (see ADMIT). */
  async admit(tenant: string, jobId: string, tokens: number, s: TenantSettings, now: number, counted = true): Promise<{ reservation: JobReservation; states: LimitState[] }> {
    if (tokens > s.tokensPerMinute) {
      throw new AppError('invalid_request', `max_tokens ${tokens} is more than your limit of ${s.tokensPerMinute} generated tokens per minute.`, 'max_tokens');
    }
    const keys = [this.tokensKey(tenant), this.jobsKey(tenant)];
    const args: (string | number)[] = [tokens, s.tokensPerMinute, this.windowMs, jobId, now, s.maxInFlightJobs, s.maxQueuedJobs, this.graceMs, this.setTtlMs, counted ? '1' : '0'];
    type Reply = [number, string, number, number, number?, number?, string?];
    let r = (await ADMIT.run(this.redis, keys, args)) as Reply;
    if (r[0] === 2) r = (await ADMIT.run(this.redis, keys, [...args, 'read', ...(await this.readMembers(tenant, now))])) as Reply;
    const [ok, which, a, b] = r;
    if (ok === 1) {
      const states: LimitState[] = [
        { name: 'tenant_tokens', limit: s.tokensPerMinute, remaining: Math.max(0, s.tokensPerMinute - a), resetMs: b },
        { name: 'tenant_in_flight', limit: s.maxInFlightJobs, remaining: Math.max(0, s.maxInFlightJobs - (r[4] ?? 0)), resetMs: 0 },
      ];
      return { reservation: { tenant, jobId, tokens, window: r[6] ?? '' }, states };
    }
    switch (which) {
      case 'tenant_tokens':
        throw new LimitExceeded(
          'rate_limited',
          `Your organisation's limit of ${s.tokensPerMinute} generated tokens per minute is used up (each request reserves its max_tokens); retry after the Retry-After delay or lower max_tokens.`,
          { name: 'tenant_tokens', limit: s.tokensPerMinute, remaining: Math.max(0, s.tokensPerMinute - a), resetMs: b },
          b,
        );
      case 'tenant_in_flight':
        throw new LimitExceeded(
          'rate_limited',
          `Your organisation already has ${a} unfinished jobs, its limit; retry when some have finished.`,
          { name: 'tenant_in_flight', limit: s.maxInFlightJobs, remaining: 0, resetMs: 0 },
          this.busyRetryMs,
        );
      default:
        throw new LimitExceeded(
          'rate_limited',
          `Your organisation already has ${a} jobs waiting for a worker, its limit; retry when some have started.`,
          { name: 'tenant_queued', limit: s.maxQueuedJobs, remaining: 0, resetMs: 0 },
          this.busyRetryMs,
        );
    }
  }

  /** The tenant's jobs as (id, letter) pairs for ADMIT's second call. */
  private async readMembers(tenant: string, now: number): Promise<string[]> {
    const ids = await this.redis.zrange(this.jobsKey(tenant), '0', '-1');
    // One command per record (each in its own slot on a Cluster); they leave together.
    const records = await Promise.all(ids.map((id) => this.redis.hmget(this.jobKey(id), 'status', 'deadline')));
    return ids.flatMap((id, i) => {
      const [status, deadline] = records[i] ?? [null, null];
      if (!status) return [id, 'm'];
      if (deadline && Number(deadline) < now) return [id, 'x'];
      return [id, status === 'queued' ? 'q' : status === 'running' ? 'r' : 'x'];
    });
  }

  /** Frees the slot of a job that was never enqueued (or de-duplicated, or answered from the cache). */
  async releaseSlot(r: JobReservation): Promise<void> {
    await this.redis.zrem(this.jobsKey(r.tenant), r.jobId);
  }

  /** Gives back reserved tokens that were not generated, to the reservation's window; dropped once that window ended. */
  async refundTokens(r: JobReservation, units: number): Promise<void> {
    const n = Math.min(r.tokens, Math.max(0, Math.floor(units)));
    if (n > 0) await REFUND.run(this.redis, [this.tokensKey(r.tenant)], [n, r.window]);
  }
}
