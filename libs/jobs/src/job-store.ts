import type { Redis } from 'ioredis';
import {
  InferenceResultSchema,
  type InferenceResult,
  type JobEvent,
  type JobStatus,
  type RedisKeys,
  type SerializedError,
  JOB_STATUSES,
} from '@fastvlm/contracts';
import { LuaScript } from './lua-script';

/**
 * Atomically checks the job's status, moves it, appends an event to its stream
 * and announces the entry on its channel. Doing all of it in one script is what
 * makes "exactly one result" hold when a crashed job runs twice.
 *
 * KEYS: record, stream. ARGV: channel, allowed-from (comma list), new status,
 * event JSON, ttl seconds (0 = keep), then field/value pairs to set.
 */
const TRANSITION = new LuaScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if not st then return {'missing', ''} end
local allowed = false
for s in string.gmatch(ARGV[2], '[^,]+') do if s == st then allowed = true end end
if not allowed then return {'rejected', st} end
redis.call('HSET', KEYS[1], 'status', ARGV[3])
if #ARGV > 5 then redis.call('HSET', KEYS[1], unpack(ARGV, 6)) end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[4])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[4])
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
return {'ok', st}
`);

/** Appends a token event while the job is running. KEYS: record, stream. ARGV: channel, event JSON. */
const APPEND_IF_RUNNING = new LuaScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return false end
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
return id
`);

/**
 * Creates the record and its first event unless the id exists, puts the id
 * first on the tenant's recent list (trimmed, for the console), and refreshes
 * the TTL of the key the job depends on (its stored image), reporting whether
 * that key exists, all in one round trip.
 * KEYS: record, stream, recent list, dependency (optional). ARGV: channel, event, list length, ttl, dependency ttl, fields…
 * Reply: {created (0/1), dependency found (0/1)}.
 */
const CREATE = new LuaScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return {0, 0} end
local found = 0
if #KEYS > 3 then found = redis.call('EXPIRE', KEYS[4], ARGV[5]) end
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
local id = redis.call('XADD', KEYS[2], '*', 'e', ARGV[2])
redis.call('PUBLISH', ARGV[1], id .. ' ' .. ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[7])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
redis.call('EXPIRE', KEYS[3], ARGV[4])
return {1, found}
`, { batch: true });

/** A key a new job needs to outlive the job's wait in the queue. */
export interface JobDependency {
  key: string;
  ttlSeconds: number;
}

/** Jobs remembered per tenant for the console's list. */
const RECENT_JOBS = 100;

export interface JobRecord {
  id: string;
  tenant: string;
  status: JobStatus;
  model: string;
  createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  result?: InferenceResult;
  error?: SerializedError;
}

export interface NewJob {
  id: string;
  tenant: string;
  model: string;
  createdAt: number;
}

export type TransitionOutcome =
  | { ok: true; from: JobStatus }
  | { ok: false; reason: 'missing' }
  | { ok: false; reason: 'rejected'; current: JobStatus };

/** Public job records and their event streams (queue Redis). */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** Seconds a finished job's record and events are kept. */
    private readonly ttlSeconds: number,
  ) {}

  /** Creates a queued job; false when the id is taken. */
  async create(job: NewJob): Promise<boolean> {
    return (await this.createWith(job, null)).created;
  }

  /**
   * Creates a queued job and, in the same round trip, refreshes the TTL of
   * `dependency` (the job's image), saying whether it still exists.
   */
  async createWith(job: NewJob, dependency: JobDependency | null): Promise<{ created: boolean; dependencyFound: boolean }> {
    const event: JobEvent = { type: 'status', status: 'queued' };
    const [created, found] = (await CREATE.run(
      this.redis,
      [this.keys.job(job.id), this.keys.events(job.id), this.keys.tenantJobs(job.tenant), ...(dependency ? [dependency.key] : [])],
      [
        this.keys.eventsChannel(job.id),
        JSON.stringify(event),
        RECENT_JOBS,
        this.ttlSeconds,
        dependency?.ttlSeconds ?? 0,
        // ARGV[7] is the id: the script pushes it to the recent list.
        'id',
        job.id,
        'tenant',
        job.tenant,
        'model',
        job.model,
        'status',
        'queued',
        'created_at',
        job.createdAt,
      ],
    )) as [number, number];
    return { created: created === 1, dependencyFound: found === 1 };
  }

  /** The tenant's most recent jobs that still exist, newest first. */
  async recent(tenant: string, limit: number): Promise<JobRecord[]> {
    const ids = await this.redis.lrange(this.keys.tenantJobs(tenant), 0, Math.min(limit, RECENT_JOBS) - 1);
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is JobRecord => r !== null && r.tenant === tenant);
  }

  /** Removes a record that never got a queue job (e.g. the enqueue was de-duplicated). */
  async discard(id: string): Promise<void> {
    await this.redis.del(this.keys.job(id), this.keys.events(id));
  }

  async get(id: string): Promise<JobRecord | null> {
    const h = await this.redis.hgetall(this.keys.job(id));
    if (!h.id || !h.tenant || !h.status) return null;
    const status = JOB_STATUSES.find((s) => s === h.status);
    if (!status) return null;
    return {
      id: h.id,
      tenant: h.tenant,
      status,
      model: h.model ?? '',
      createdAt: Number(h.created_at),
      ...(h.started_at ? { startedAt: Number(h.started_at) } : {}),
      ...(h.finished_at ? { finishedAt: Number(h.finished_at) } : {}),
      ...(h.result ? { result: InferenceResultSchema.parse(JSON.parse(h.result)) } : {}),
      ...(h.error ? { error: JSON.parse(h.error) as SerializedError } : {}),
    };
  }

  /** Worker picked the job up (first run, or re-run after a crash). */
  start(id: string, now: number): Promise<TransitionOutcome> {
    return this.transition(id, ['queued', 'running'], 'running', { type: 'status', status: 'running' }, 0, {
      started_at: now,
    });
  }

  /** A transient failure: the job goes back to the queue for another attempt. */
  requeue(id: string): Promise<TransitionOutcome> {
    return this.transition(id, ['running'], 'queued', { type: 'status', status: 'queued' }, 0, {});
  }

  succeed(id: string, result: InferenceResult): Promise<TransitionOutcome> {
    return this.transition(id, ['queued', 'running'], 'succeeded', { type: 'done', result }, this.ttlSeconds, {
      result: JSON.stringify(result),
      finished_at: result.finishedAt,
    });
  }

  fail(id: string, error: SerializedError, now: number): Promise<TransitionOutcome> {
    return this.transition(id, ['queued', 'running'], 'failed', { type: 'error', error }, this.ttlSeconds, {
      error: JSON.stringify(error),
      finished_at: now,
    });
  }

  /** Cancels a queued or running job and tells the workers, so a running one stops at its next token. */
  async cancel(id: string, now: number): Promise<TransitionOutcome> {
    const outcome = await this.transition(id, ['queued', 'running'], 'cancelled', { type: 'status', status: 'cancelled' }, this.ttlSeconds, {
      finished_at: now,
    });
    if (outcome.ok) await this.redis.publish(this.keys.cancelChannel(), id);
    return outcome;
  }

  /** Appends a token event; false when the job is no longer running (cancelled, finished). */
  async appendToken(id: string, index: number, text: string): Promise<boolean> {
    const event: JobEvent = { type: 'token', index, text };
    const r = await APPEND_IF_RUNNING.run(
      this.redis,
      [this.keys.job(id), this.keys.events(id)],
      [this.keys.eventsChannel(id), JSON.stringify(event)],
    );
    return r !== null;
  }

  private async transition(
    id: string,
    from: JobStatus[],
    to: JobStatus,
    event: JobEvent,
    ttl: number,
    fields: Record<string, string | number>,
  ): Promise<TransitionOutcome> {
    const args: (string | number)[] = [this.keys.eventsChannel(id), from.join(','), to, JSON.stringify(event), ttl];
    for (const [k, v] of Object.entries(fields)) args.push(k, v);
    const reply = (await TRANSITION.run(this.redis, [this.keys.job(id), this.keys.events(id)], args)) as [string, string];
    const [kind, status] = reply;
    if (kind === 'missing') return { ok: false, reason: 'missing' };
    const current = JOB_STATUSES.find((s) => s === status);
    if (!current) throw new Error(`job ${id} has an unknown status "${status}"`);
    return kind === 'ok' ? { ok: true, from: current } : { ok: false, reason: 'rejected', current };
  }
}
