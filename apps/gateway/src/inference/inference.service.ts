import { Inject, Injectable } from '@nestjs/common';
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  AppError,
  INFERENCE_JOB,
  type InferenceJobData,
  type InferenceResult,
  type JobEvent,
  type RedisKeys,
  WORK_CLASSES,
  type WorkClass,
} from '@fastvlm/contracts';
import {
  CLASS_PRIORITY,
  newJobId,
  submitInference,
  TickBatch,
  type AnswerCache,
  type EventHub,
  type ImageStore,
  type JobStore,
  type StreamedEvent,
  type SubmitOutcome,
  type TransitionOutcome,
} from '@fastvlm/jobs';
import { inSpan, type GatewayMetrics } from '@fastvlm/observability';
import { LimitExceeded, type JobReservation, type Principal } from '@fastvlm/security';

/** How long a client whose backlog is full should wait before it retries. */
const BACKLOG_RETRY_MS = 5_000;
import type { ImageSource } from '../chat/openai-request';
import { CONFIG, type GatewayConfig } from '../config';
import * as T from '../infra/tokens';
import { CHAT_FIELDS, RequestGate, type Admitted, type InputFields } from '../intake/request-gate';
import type { Pool, Pools } from '../infra/pools';
import { cacheLookups } from '../metrics/cache-lookups';
import { METRICS } from '../metrics/tokens';
import { ModelCatalog } from '../models/model-catalog';
import { SyncWaiters } from './sync-waiters';
/** How much longer than the longest sync wait a waiter count may live (a gateway that died mid-wait never decrements it). */
const WAITER_TTL_MARGIN_MS = 60_000;

interface QueuedJob {
  name: string;
  data: InferenceJobData;
  opts: JobsOptions;
}

/** The id of the job that carries an add: another job's when BullMQ de-duplicated it. */
/**
 * The class a request runs at: chat completions are interactive and jobs async; a client asking for
 * low priority gets the next class down; the tenant's `maxWorkClass` caps how urgent it may be.
 */
export function workClassOf(mode: 'sync' | 'async', low: boolean, cap: WorkClass): WorkClass {
  const asked = Math.min(WORK_CLASSES.indexOf(mode === 'sync' ? 'interactive' : 'async') + (low ? 1 : 0), WORK_CLASSES.length - 1);
  return WORK_CLASSES[Math.max(asked, WORK_CLASSES.indexOf(cap))] ?? 'batch';
}

function backlogFull(limit: number, held: number): LimitExceeded {
  return new LimitExceeded(
    'rate_limited',
    `Your organisation already has ${held} async and batch jobs waiting for this model, its limit; retry when some have started.`,
    { name: 'tenant_queued', limit, remaining: 0, resetMs: 0 },
    BACKLOG_RETRY_MS,
  );
}

function idOf(job: { id?: string }): string {
  if (!job.id) throw new Error('the queue returned a job without an id');
  return job.id;
}

export interface InferenceInput {
  /** The model the request names (an id or an alias); none: the default model. */
  model: string | undefined;
  image: ImageSource;
  question: string;
  params: InferenceJobData['params'];
  /** The client asked for the next class of work down (see `workClassOf`). */
  lowPriority?: boolean;
  /** How errors name the question and image fields (JSON body by default). */
  fields?: InputFields;
  /** The class the request runs at, decided by its caller (the Batch API runs its requests at `batch`); default from the mode. */
  workClass?: Exclude<WorkClass, 'interactive'>;
}

/**
 * Gateway side of inference: routing to a model's pool, admission,
 * submission, and following a job to its end.
 */
@Injectable()
export class InferenceService {
  /**
   * Jobs admitted together go to their pool's queue in one pipeline (addBulk),
   * one write instead of one per job. If Redis fails the pipeline, every job of
   * the batch fails, as each would have alone. One batcher per pool queue.
   */
  private readonly adds = new Map<string, TickBatch<QueuedJob, string>>();

  private readonly waiters: SyncWaiters;

  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(T.JOB_STORE) private readonly store: JobStore,
    @Inject(T.IMAGE_STORE) private readonly images: ImageStore,
    @Inject(T.ANSWER_CACHE) private readonly answers: AnswerCache,
    @Inject(T.EVENT_HUB) private readonly hub: EventHub,
    @Inject(ModelCatalog) private readonly models: ModelCatalog,
    @Inject(T.POOLS) private readonly pools: Pools,
    @Inject(METRICS) private readonly metrics: GatewayMetrics,
    @Inject(RequestGate) private readonly gate: RequestGate,
    @Inject(T.REDIS) redis: Redis,
    @Inject(T.KEYS) keys: RedisKeys,
  ) {
    this.waiters = new SyncWaiters(redis, keys, cfg.SYNC_TIMEOUT_MS + WAITER_TTL_MARGIN_MS);
  }

  /** Milliseconds between SSE keep-alive comments. */
  get keepAliveMs(): number {
    return this.cfg.SSE_KEEPALIVE_MS;
  }

  /** How long a sync or streamed request waits for its job. */
  get syncTimeoutMs(): number {
    return this.cfg.SYNC_TIMEOUT_MS;
  }

  /**
   * Routes the request to the pool of the model it names (an alias is resolved: the job, its record,
   * cache keys and metrics carry the model id), validates it, then answers from the cache or enqueues it.
   */
  async submit(caller: Principal, input: InferenceInput, mode: 'sync' | 'async', jobId?: string): Promise<Admitted> {
    const model = await this.models.resolve(input.model);
    const pool = this.pools.of(model);
    const fields = input.fields ?? CHAT_FIELDS;
    await inSpan('validate', () => this.gate.validate(caller, input, fields));
    const id = jobId ?? newJobId();
    const workClass = input.workClass ?? workClassOf(mode, input.lowPriority === true, caller.settings.maxWorkClass);
    // Without fair queueing every job takes the interactive path: one FIFO queue, the old caps.
    const interactive = workClass === 'interactive' || !this.cfg.FAIR_QUEUEING;
    const reservation = await this.gate.admit(caller, id, input.params.maxTokens, pool.queue, interactive, interactive ? undefined : () => this.checkBacklog(pool, caller));
    let outcome: SubmitOutcome;
    try {
      const bytes = await this.gate.imageBytes(input.image, fields.image);
      outcome = await submitInference(
        {
          store: this.store,
          images: this.images,
          answers: this.answers,
          enqueue: (data, opts) => (workClass === 'interactive' || interactive ? this.enqueue(pool, data, opts.deduplicationId) : this.hold(pool, data, caller, workClass)),
          servedModel: () => this.models.revision(model),
          now: () => Date.now(),
        },
        {
          tenant: caller.tenant,
          model,
          image: bytes,
          question: input.question,
          params: input.params,
          mode,
          workClass,
          jobId: id,
          deadlineMs: this.cfg.JOB_DEADLINE_S * 1000,
        },
      );
    } catch (e) {
      await this.gate.release(reservation);
      throw e;
    }
    for (const [level, hit] of cacheLookups(outcome, this.cfg.ANSWER_CACHE_L1_BYTES > 0)) this.metrics.cacheLookup(model, level, hit);
    return this.gate.finish(outcome, reservation, model);
  }

  /**
   * The checks `submit` makes before admission (model, text, inline image, whether URL images are
   * allowed), alone: the Batch API checks every line of a file before it runs any of them.
   */
  async check(caller: Principal, input: InferenceInput): Promise<void> {
    await this.models.resolve(input.model);
    await this.gate.validate(caller, input, input.fields ?? CHAT_FIELDS);
  }

  /** Events of a job after `afterId`, ending with its final event. */
  follow(jobId: string, afterId: string, signal?: AbortSignal): AsyncGenerator<StreamedEvent> {
    return this.hub.follow(jobId, afterId, signal);
  }

  /**
   * Follows a sync job as one of its waiters, counted across gateways: when the
   * last waiter leaves (answered, disconnected, timed out) before any worker
   * took the job, the job is cancelled and leaves the queue, since nobody would
   * read its answer. Resolves `abandoned` to whether this waiter did that.
   */
  async *waitFor(jobId: string, signal: AbortSignal, abandoned: { cancelled: boolean } = { cancelled: false }): AsyncGenerator<StreamedEvent> {
    // Without a count (Redis refused it) this waiter must not decrement one, nor cancel the job.
    const counted = await this.waiters.enter(jobId).then(
      () => true,
      () => false,
    );
    try {
      yield* this.follow(jobId, '0', signal);
    } finally {
      // A waiter that gave up must know whether it cancelled the job (its error says so);
      // one that got its answer need not wait for the count to go down.
      if (counted && signal.aborted) abandoned.cancelled = await this.leave(jobId);
      else if (counted) void this.leave(jobId);
    }
  }

  private async leave(jobId: string): Promise<boolean> {
    try {
      if (!(await this.waiters.leave(jobId))) return false;
      return (await this.cancel(jobId)).ok;
    } catch {
      // Redis is away: the job runs for nobody, and its counter lapses.
      return false;
    }
  }

  /** Waits for the job's result; an `AppError` for failed, cancelled or timed-out jobs. */
  async result(jobId: string, cacheKey: string | null, signal?: AbortSignal, reservation: JobReservation | null = null): Promise<InferenceResult> {
    const deadline = AbortSignal.timeout(this.cfg.SYNC_TIMEOUT_MS);
    const both = signal ? AbortSignal.any([signal, deadline]) : deadline;
    const abandoned = { cancelled: false };
    for await (const { event } of this.waitFor(jobId, both, abandoned)) {
      const r = this.finalOf(event);
      if (r) {
        if (cacheKey) this.answers.remember(cacheKey, r);
        this.gate.settle(reservation, r);
        return r;
      }
    }
    if (deadline.aborted) throw this.timeoutError(jobId, abandoned.cancelled);
    throw new AppError('cancelled', 'The request was abandoned.');
  }

  /** The error a sync or streamed request ends with when no answer came within SYNC_TIMEOUT_MS. */
  timeoutError(jobId: string, cancelled: boolean): AppError {
    const fate = cancelled ? `no worker took the job ${jobId}, so it was cancelled` : `the job ${jobId} goes on`;
    return new AppError('timeout', `No answer within ${this.cfg.SYNC_TIMEOUT_MS} ms; ${fate}.`);
  }

  /**
   * Cancels a job (DELETE /v1/jobs/{id}, or its last sync waiter gave up): the
   * record first (a running job stops at its next token), then its entry in
   * its pool's queue (the model its record names), so that no worker picks it
   * up and no identical request joins it through the queue's de-duplication.
   * A finished job keeps its status.
   */
  async cancel(jobId: string): Promise<TransitionOutcome> {
    const outcome = await this.store.cancel(jobId, Date.now());
    if (outcome.ok) {
      const model = await this.store.modelOf(jobId);
      if (model !== null) {
        const pool = this.pools.of(model);
        // Still in the fair queue: it never reaches the workers. Otherwise it was dispatched (or is being).
        if (!(await pool.fair.remove(jobId))) await this.dropFromQueue(pool.queue, jobId);
      }
    }
    return outcome;
  }

  private async dropFromQueue(queue: Queue, jobId: string): Promise<void> {
    const job = await queue.getJob(jobId);
    if (!job) return;
    // Removing a waiting job also frees its de-duplication id.
    if ((await queue.remove(jobId)) === 1) return;
    // A running job is locked by its worker and stops by itself; its de-duplication id must not outlive the cancel.
    const dedup = job.deduplicationId;
    if (dedup && (await queue.getDeduplicationJobId(dedup)) === jobId) await queue.removeDeduplicationKey(dedup);
  }

  /** Keeps an answer this gateway saw in its in-process cache. */
  remember(cacheKey: string, result: InferenceResult): void {
    this.answers.remember(cacheKey, result);
  }

  /** A streamed sync answer arrived: gives back the tokens it reserved but did not generate. */
  settle(reservation: JobReservation | null, result: InferenceResult): void {
    this.gate.settle(reservation, result);
  }

  /** A job this gateway fed ended (a batch request): gives back the tokens it reserved but did not generate. */
  refund(reservation: JobReservation, completionTokens: number): void {
    void this.gate.refund(reservation, completionTokens);
  }

  /** The result carried by a final event; throws for failures; null for other events. */
  finalOf(event: JobEvent): InferenceResult | null {
    switch (event.type) {
      case 'done':
        return event.result;
      case 'error':
        throw new AppError(event.error.code, event.error.message, event.error.param);
      case 'status':
        if (event.status === 'cancelled') throw new AppError('cancelled', 'The job was cancelled.');
        return null;
      case 'token':
        return null;
    }
  }

  /**
   * Adds a job to its pool's queue; counts it as an arrival of that pool for the autoscaler only when the
   * queue took it as a new job (its own id came back): a request de-duplicated onto a job in flight gets
   * that job's id and adds no work.
   */
  private async enqueue(pool: Pool, data: InferenceJobData, deduplicationId: string | undefined): Promise<string> {
    // Interactive work has no BullMQ priority, which BullMQ takes before any prioritized job.
    const priority = this.cfg.FAIR_QUEUEING ? CLASS_PRIORITY[data.workClass ?? 'interactive'] : 0;
    const carrier = await this.batcher(pool.queue).submit({
      name: INFERENCE_JOB,
      data,
      opts: { jobId: data.id, ...(priority > 0 ? { priority } : {}), ...(deduplicationId ? { deduplication: { id: deduplicationId } } : {}) },
    });
    if (carrier === data.id) pool.arrivals.add();
    return carrier;
  }

  /**
   * Puts an async or batch job in its pool's fair queue, with its tenant's weight; the pool's dispatcher moves it
   * to the queue the workers read in its turn. Not de-duplicated against jobs in flight (the cache still answers
   * a repeated deterministic request once its first answer exists).
   */
  private async hold(pool: Pool, data: InferenceJobData, caller: Principal, workClass: Exclude<WorkClass, 'interactive'>): Promise<string> {
    const { accepted, held } = await pool.fair.push({ id: data.id, tenant: data.tenant, workClass, job: { ...data, workClass } }, caller.settings.weight, caller.settings.maxBacklogJobs);
    if (!accepted) throw backlogFull(caller.settings.maxBacklogJobs, held);
    pool.arrivals.add();
    pool.dispatcher.kick();
    return data.id;
  }

  /** Refuses an async or batch job before anything is written when its tenant's backlog in the pool is full. */
  private async checkBacklog(pool: Pool, caller: Principal): Promise<void> {
    const held = await pool.fair.heldBy(caller.tenant);
    if (held >= caller.settings.maxBacklogJobs) throw backlogFull(caller.settings.maxBacklogJobs, held);
  }

  private batcher(queue: Queue): TickBatch<QueuedJob, string> {
    let b = this.adds.get(queue.name);
    if (!b) {
      b = new TickBatch<QueuedJob, string>(
        async (jobs) => (await queue.addBulk(jobs)).map(idOf),
        async (job) => idOf(await queue.add(job.name, job.data, job.opts)),
      );
      this.adds.set(queue.name, b);
    }
    return b;
  }
}
