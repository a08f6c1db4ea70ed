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
import { APPEND_IF_CURRENT, CREATE, INDEX_NEW, MOVE_TO, MOVE_TO_ALLOW_OOM, START, SWEEP_PENDING } from './job-scripts';
import type { LuaScript } from './lua-script';

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
  /** Epoch ms after which the job is dead whatever its status says (absent: no deadline). */
  deadline?: number;
  /** Claims so far (absent until a worker starts it); the current run's fence. */
  attempt?: number;
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
  /** Epoch ms after which the worker gives up on the job (`timeout`). */
  deadline?: number;
}

/**
 * `superseded`: the write came from a run that no longer holds the job
 * (another run claimed it since), so it was refused.
 */
export type TransitionOutcome =
  | { ok: true; from: JobStatus }
  | { ok: false; reason: 'missing' }
  | { ok: false; reason: 'rejected' | 'superseded'; current: JobStatus };

/** A claim: the attempt number fences every write of this run. */
export type StartOutcome = { ok: true; from: JobStatus; attempt: number } | Exclude<TransitionOutcome, { ok: true }>;

/** What the sweeper did with one pending id: `lost` when it failed the job (`enqueue_lost`), otherwise what it found. */
export type SweepOutcome = 'lost' | 'enqueued' | 'missing' | JobStatus;

/** Public job records and their event streams (queue Redis). */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** Seconds a finished job's record and events are kept (and kept past the deadline of an unfinished one). */
    private readonly ttlSeconds: number,
  ) {}

  /** Creates a queued job; false when the id is taken. */
  async create(job: NewJob): Promise<boolean> {
    return (await this.createWith(job, null)).created;
  }

  /**
   * Creates a queued job and refreshes the TTL of `dependency` (the job's
   * image), saying whether it still exists. The job is indexed (pending, the
   * tenant's recent list) first, with the image's TTL alongside, then the
   * record is written: two round trips, because on a Cluster the index, the
   * image and the job live in different slots.
   * The record and its events expire `JOB_TTL_S` after the deadline (after
   * creation without one) unless the job ends first, whatever happens to it.
   */
  async createWith(job: NewJob, dependency: JobDependency | null): Promise<{ created: boolean; dependencyFound: boolean }> {
    const event: JobEvent = { type: 'status', status: 'queued' };
    const untilDeadline = job.deadline !== undefined ? Math.ceil(Math.max(0, job.deadline - job.createdAt) / 1000) : 0;
    const [, found] = await Promise.all([
      INDEX_NEW.run(this.redis, [this.keys.pendingJobs(), this.keys.tenantJobs(job.tenant)], [job.id, job.createdAt, RECENT_JOBS, this.ttlSeconds]),
      dependency ? this.redis.expire(dependency.key, dependency.ttlSeconds) : Promise.resolve(0),
    ]);
    const created = await CREATE.run(
      this.redis,
      [this.keys.job(job.id), this.keys.events(job.id), this.keys.eventsChannel(job.id)],
      [
        JSON.stringify(event),
        untilDeadline + this.ttlSeconds,
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
        ...(job.deadline !== undefined ? ['deadline', job.deadline] : []),
      ],
    );
    return { created: created === 1, dependencyFound: found === 1 };
  }

  /** The tenant's most recent jobs that still exist, newest first. */
  async recent(tenant: string, limit: number): Promise<JobRecord[]> {
    const listed = await this.redis.lrange(this.keys.tenantJobs(tenant), 0, Math.min(limit, RECENT_JOBS) - 1);
    // The list is written apart from the record (another slot), so a re-used id may appear twice.
    const ids = [...new Set(listed)];
    const records = await Promise.all(ids.map((id) => this.get(id)));
    return records.filter((r): r is JobRecord => r !== null && r.tenant === tenant);
  }

  /** Removes a record that never got a queue job (the enqueue was de-duplicated onto another job). */
  async discard(id: string): Promise<void> {
    // Two slots: the job's keys, then the shared index (an id left there alone is dropped by the sweeper).
    await this.redis.del(this.keys.job(id), this.keys.events(id));
    await this.redis.zrem(this.keys.pendingJobs(), id);
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
      ...(h.deadline ? { deadline: Number(h.deadline) } : {}),
      ...(h.attempt ? { attempt: Number(h.attempt) } : {}),
      ...(h.started_at ? { startedAt: Number(h.started_at) } : {}),
      ...(h.finished_at ? { finishedAt: Number(h.finished_at) } : {}),
      ...(h.result ? { result: InferenceResultSchema.parse(JSON.parse(h.result)) } : {}),
      ...(h.error ? { error: JSON.parse(h.error) as SerializedError } : {}),
    };
  }

  /** The record's status; null when it does not exist (never created, discarded or expired). */
  async status(id: string): Promise<JobStatus | null> {
    const st = await this.redis.hget(this.keys.job(id), 'status');
    return JOB_STATUSES.find((s) => s === st) ?? null;
  }

  /** The model the record names (its pool: the queue its job is on); null when the record does not exist. */
  modelOf(id: string): Promise<string | null> {
    return this.redis.hget(this.keys.job(id), 'model');
  }

  /**
   * A worker claims the job (first run, or a re-run after a crash) and gets
   * the attempt number that fences its writes. `claim` is the queue's count of
   * claims of this job (BullMQ's `attemptsStarted`): a run whose claim is not
   * newer than the record's attempt lost the job to a later run and is
   * refused (`superseded`). Without it, the next number is taken.
   */
  async start(id: string, now: number, claim?: number): Promise<StartOutcome> {
    const event: JobEvent = { type: 'status', status: 'running' };
    const [kind, status, attempt] = (await START.run(
      this.redis,
      [this.keys.job(id), this.keys.events(id), this.keys.eventsChannel(id)],
      // A queue that does not count claims (0) gets the next number rather than a refusal.
      [JSON.stringify(event), now, claim !== undefined && claim > 0 ? claim : ''],
    )) as [string, string, number];
    const outcome = this.outcome(id, kind, status);
    // Claimed jobs leave the pending index (after a crash right here, the sweeper finds it running and drops it).
    if (outcome.ok) await this.unindex(id);
    return outcome.ok ? { ...outcome, attempt: Number(attempt) } : outcome;
  }

  /** A transient failure of the run holding `attempt`: the job goes back to the queue for another attempt. */
  requeue(id: string, attempt: number): Promise<TransitionOutcome> {
    return this.move(MOVE_TO_ALLOW_OOM, id, ['running'], 'queued', { type: 'status', status: 'queued' }, 0, attempt, false, {});
  }

  /**
   * Stores the result of the run holding `attempt`. Without an attempt, only a
   * job no run has claimed can take a result (an answer found in the cache).
   */
  succeed(id: string, result: InferenceResult, attempt?: number): Promise<TransitionOutcome> {
    return this.move(
      MOVE_TO,
      id,
      attempt === undefined ? ['queued'] : ['running'],
      'succeeded',
      { type: 'done', result },
      this.ttlSeconds,
      attempt,
      true,
      { result: JSON.stringify(result), finished_at: result.finishedAt },
    );
  }

  /**
   * Fails the job for good. With `attempt`, only for the run holding it; without,
   * whichever run holds it (the queue ended the job, or it never got there).
   * Runs even when Redis is at `maxmemory`.
   */
  fail(id: string, error: SerializedError, now: number, attempt?: number): Promise<TransitionOutcome> {
    return this.move(MOVE_TO_ALLOW_OOM, id, ['queued', 'running'], 'failed', { type: 'error', error }, this.ttlSeconds, attempt, true, {
      error: JSON.stringify(error),
      finished_at: now,
    });
  }

  /** Cancels a queued or running job and tells the workers, so a running one stops at its next token. */
  async cancel(id: string, now: number): Promise<TransitionOutcome> {
    const outcome = await this.move(
      MOVE_TO_ALLOW_OOM,
      id,
      ['queued', 'running'],
      'cancelled',
      { type: 'status', status: 'cancelled' },
      this.ttlSeconds,
      undefined,
      true,
      { finished_at: now },
    );
    if (outcome.ok) await this.redis.publish(this.keys.cancelChannel(), id);
    return outcome;
  }

  /**
   * Appends a token event of the run holding `attempt`; false when that run
   * may no longer write (the job was cancelled, finished, or claimed by another run).
   */
  async appendToken(id: string, index: number, text: string, attempt: number): Promise<boolean> {
    const event: JobEvent = { type: 'token', index, text, attempt };
    const r = await APPEND_IF_CURRENT.run(this.redis, [this.keys.job(id), this.keys.events(id), this.keys.eventsChannel(id)], [JSON.stringify(event), attempt]);
    return r !== null;
  }

  /** Up to `limit` pending ids (created, never claimed) created before `before`, oldest first. */
  pendingBefore(before: number, limit: number): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.pendingJobs(), '-inf', `(${before}`, 'LIMIT', 0, limit);
  }

  /**
   * Fails a pending job with `error` if it is still queued and its pool holds
   * it nowhere (`isEnqueued` of the model its record names: each model has its
   * own queue and fair queue); either way drops it from the index. The queue is
   * checked first, in its own slot: an enqueue landing between that check and
   * the record's would meet a failed record and be refused by the worker,
   * which needs a gateway stalled for the whole sweep grace between writing
   * the record and enqueueing.
   */
  async sweepPending(id: string, isEnqueued: (model: string) => Promise<boolean>, error: SerializedError, now: number): Promise<SweepOutcome> {
    const event: JobEvent = { type: 'error', error };
    // A record's model never changes; a record that is gone is answered 'missing' by the script.
    const model = await this.modelOf(id);
    const enqueued = model !== null && (await isEnqueued(model));
    const r = await SWEEP_PENDING.run(
      this.redis,
      [this.keys.job(id), this.keys.events(id), this.keys.eventsChannel(id)],
      [JSON.stringify(event), this.ttlSeconds, now, JSON.stringify(error), enqueued ? '1' : '0'],
    );
    await this.unindex(id);
    const known: SweepOutcome | undefined = r === 'lost' || r === 'enqueued' || r === 'missing' ? r : JOB_STATUSES.find((s) => s === r);
    if (!known) throw new Error(`sweeping job ${id} answered "${String(r)}"`);
    return known;
  }

  private async move(
    script: LuaScript,
    id: string,
    from: JobStatus[],
    to: JobStatus,
    event: JobEvent,
    ttl: number,
    attempt: number | undefined,
    unindex: boolean,
    fields: Record<string, string | number>,
  ): Promise<TransitionOutcome> {
    const args: (string | number)[] = [from.join(','), to, JSON.stringify(event), ttl, attempt ?? ''];
    for (const [k, v] of Object.entries(fields)) args.push(k, v);
    const [kind, status] = (await script.run(this.redis, [this.keys.job(id), this.keys.events(id), this.keys.eventsChannel(id)], args)) as [string, string];
    const outcome = this.outcome(id, kind, status);
    if (outcome.ok && unindex) await this.unindex(id);
    return outcome;
  }

  /**
   * Drops a job from the pending index (the shared slot). Best effort: the
   * transition it follows has happened, and an id left behind is dropped by
   * the sweeper once it sees the record is no longer queued.
   */
  private async unindex(id: string): Promise<void> {
    await this.redis.zrem(this.keys.pendingJobs(), id).catch(() => undefined);
  }

  private outcome(id: string, kind: string, status: string): TransitionOutcome {
    if (kind === 'missing') return { ok: false, reason: 'missing' };
    const current = JOB_STATUSES.find((s) => s === status);
    if (!current) throw new Error(`job ${id} has an unknown status "${status}"`);
    switch (kind) {
      case 'ok':
        return { ok: true, from: current };
      case 'rejected':
      case 'superseded':
        return { ok: false, reason: kind, current };
      default:
        throw new Error(`a job transition of ${id} answered "${kind}"`);
    }
  }
}
