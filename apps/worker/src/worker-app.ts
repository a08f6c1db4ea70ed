import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { INFERENCE_JOB, InferenceJobDataSchema, RedisKeys, poolQueue, redisTargets } from '@fastvlm/contracts';
import {
  AnswerCache,
  ImageStore,
  JobFailure,
  JobReconciler,
  JobStore,
  JobSweeper,
  poolHolds,
  WorkerRegistry,
  RedisSafetyWatch,
  UsageStore,
  assertQueueRedisSafe,
  createRedis,
  processInferenceJob,
  type InferenceEngine,
  type ProcessOutcome,
  type UsageEntry,
} from '@fastvlm/jobs';
import { WorkerMetrics } from '@fastvlm/observability';
import { Cancellations } from './cancellations';
import type { WorkerConfig } from './config';
import { WorkerTelemetry } from './telemetry/job-telemetry';
import { WorkerStatus } from './telemetry/worker-status';
import { closeRedis, settlesWithin } from './shutdown';

/** Milliseconds between BullMQ's retries of a failed fetch of the next job (see `new Worker`). */
const RUN_RETRY_DELAY_MS = 1_000;

const HEARTBEAT_MS = 5_000;
/** What `processInferenceJob` returns: each means the run found its job's record ended or ended it. */
const RUN_OUTCOMES: ReadonlySet<string> = new Set<ProcessOutcome>(['succeeded', 'cancelled', 'already-finished']);
/** Shutdown steps that only talk to Redis get at most this long each, within SHUTDOWN_TIMEOUT_MS. */
const WITHDRAW_TIMEOUT_MS = 1_000;
const QUIT_TIMEOUT_MS = 1_000;
/** With no job running, BullMQ's close gets this long before Redis is taken for away. */
const IDLE_CLOSE_MS = 2_000;
const DRAIN_POLL_MS = 250;
/** A forced engine dispose waits for the decode step in progress; past this the process exits anyway. */
const ENGINE_ABORT_MS = 2_000;

/** A worker's id in the registry and in the autoscaling signals: host, pid, and a random tail (pids repeat across containers). */
export function newWorkerId(): string {
  return `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** Jobs one worker runs at once: WORKER_CONCURRENCY, or as many as the engine batches. */
export function concurrencyOf(cfg: WorkerConfig): number {
  return cfg.WORKER_CONCURRENCY ?? cfg.FASTVLM_MAX_BATCH;
}

/** Told when a job takes a slot and when it leaves it (the autoscaling work meter). */
export interface JobActivity {
  started(): void;
  ended(): void;
}

export interface WorkerAppOptions {
  /** Registry id; made before the model loads, so the loading signal names the same worker. Default: a new one. */
  id?: string;
  activity?: JobActivity;
}

/** Engine as the worker owns it: warmed before the first job, disposed at shutdown. */
export interface OwnedEngine extends InferenceEngine {
  /** With `force`, running requests end at their next step (rejected) instead of finishing. */
  dispose(opts?: { force?: boolean }): Promise<void>;
}

/** The queue a worker consumes: its model's pool (the gateway routes each request there by the model it names). */
export function servedQueue(cfg: WorkerConfig): string {
  return poolQueue(cfg.FASTVLM_MODEL);
}

/**
 * One worker process: consumes its model pool's queue with a loaded, warmed
 * model, and drains cleanly on SIGTERM.
 */
export class WorkerApp {
  readonly id: string;
  private readonly activity: JobActivity | null;
  private readonly redis: Redis;
  private readonly cacheRedis: Redis;
  private readonly sub: Redis;
  private readonly keys: RedisKeys;
  private worker: Worker | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private safety: RedisSafetyWatch | null = null;
  private queueEvents: QueueEvents | null = null;
  /** The events reader's own connection: BullMQ leaves a connection it was given open when it closes. */
  private eventsRedis: Redis | null = null;
  private sweeping: NodeJS.Timeout | null = null;
  private readonly queue: string;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly engine: OwnedEngine,
    private readonly log: Logger,
    private readonly telemetry = new WorkerTelemetry(new WorkerMetrics(cfg.FASTVLM_MODEL), new WorkerStatus()),
    opts: WorkerAppOptions = {},
  ) {
    this.id = opts.id ?? newWorkerId();
    this.queue = servedQueue(cfg);
    this.activity = opts.activity ?? null;
    this.keys = new RedisKeys(cfg.FASTVLM_REDIS_PREFIX);
    const sink = (err: Error, connection: string): void => log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');
    this.redis = createRedis(redisTargets(cfg).queue, 'consumer', `worker:${this.id}`, sink);
    // Fail-fast: the cache is optional, and a queueing connection would hold every result write while it is away.
    const cacheTarget = redisTargets(cfg).cache;
    this.cacheRedis = cacheTarget ? createRedis(cacheTarget, 'producer', 'worker-cache', sink) : this.redis;
    this.sub = createRedis(redisTargets(cfg).queue, 'subscriber', 'worker-sub', sink);
  }

  async start(): Promise<void> {
    await this.checkRedisSafety();
    const store = new JobStore(this.redis, this.keys, this.cfg.JOB_TTL_S);
    const images = new ImageStore(this.redis, this.keys, 1);
    const answers = new AnswerCache(this.cacheRedis, this.keys, {
      l1MaxBytes: 0,
      l2TtlSeconds: this.cfg.ANSWER_CACHE_TTL_S,
      timeoutMs: this.cfg.CACHE_TIMEOUT_MS,
      onError: (op) => this.telemetry.metrics.cacheError('answer_l2', op),
    });
    const cancellations = new Cancellations(this.sub, this.keys.cancelChannel());
    await cancellations.start();
    const usage = new UsageStore(this.redis, this.keys, { retentionDays: this.cfg.USAGE_RETENTION_DAYS });
    // A lost usage write is logged with its amounts, so that it can be added back from the logs.
    const onUsageLost = (entry: UsageEntry, err: unknown): void => this.log.warn({ err, usage: entry }, 'usage write failed: this job is not metered');
    const deps = { store, images, answers, engine: this.engine, now: () => Date.now(), usage, onUsageLost };

    const handle = async (job: Job): Promise<ProcessOutcome> => {
      if (job.name !== INFERENCE_JOB) throw this.invalidJob(`unknown job name "${job.name}"`);
      const parsed = InferenceJobDataSchema.safeParse(job.data);
      if (!parsed.success) throw this.invalidJob(`invalid job data: ${parsed.error.message}`);
      const data = parsed.data;
      const signal = cancellations.track(data.id);
      // BullMQ counts the job's claims; the newest claim is the only run that may write the job.
      const attempt = { attemptsMade: job.attemptsMade, maxAttempts: job.opts.attempts ?? 1, signal, claim: job.attemptsStarted };
      try {
        const started = Date.now();
        const outcome = await this.telemetry.runJob(data, this.engine, (engine) => processInferenceJob({ ...deps, engine }, data, attempt));
        this.log.info(
          { jobId: data.id, outcome, attempt: job.attemptsMade + 1, queueMs: started - data.createdAt, runMs: Date.now() - started },
          'job finished',
        );
        return outcome;
      } catch (e) {
        if (e instanceof JobFailure) {
          this.log.warn({ jobId: data.id, code: e.error.code, kind: e.kind, attempt: job.attemptsMade + 1 }, 'job failed');
          if (e.kind === 'fatal' || job.attemptsMade + 1 >= attempt.maxAttempts) this.telemetry.jobFailed(e.error.code);
          throw e.kind === 'fatal' ? new UnrecoverableError(`${e.error.code}: ${e.error.message}`) : e;
        }
        throw e;
      } finally {
        cancellations.release(data.id);
      }
    };

    // Everything logged about a job carries the trace and request ids it was submitted with.
    // The activity hooks are in-memory counters: nothing here touches Redis per job.
    const processor = async (job: Job): Promise<ProcessOutcome> => {
      this.activity?.started();
      try {
        return await this.telemetry.inJob(job.data, () => handle(job));
      } finally {
        this.activity?.ended();
      }
    };

    this.worker = new Worker(this.queue, processor, {
      connection: this.redis,
      prefix: this.keys.bull(),
      concurrency: concurrencyOf(this.cfg),
      lockDuration: this.cfg.WORKER_LOCK_DURATION_MS,
      stalledInterval: this.cfg.WORKER_STALLED_INTERVAL_MS,
      autorun: false,
      // BullMQ waits this long after a failed fetch of the next job (15 s by default): a Redis restart or a
      // Sentinel failover that failed two fetches left the worker idle for 30 s after Redis was back.
      runRetryDelay: RUN_RETRY_DELAY_MS,
    });
    this.worker.on('error', (e) => this.log.error({ err: e }, 'queue error'));
    await this.startReconciling(store);

    const registry = new WorkerRegistry(this.redis, this.keys);
    const info = this.engine.info;
    await registry.announce(
      { id: this.id, model: info.id, revision: info.revision, dtype: info.dtype, device: info.device, pid: process.pid, startedAt: Date.now(), queue: this.queue },
      Date.now(),
    );
    this.heartbeat = setInterval(() => {
      registry.heartbeat(this.id, Date.now()).catch((e: unknown) => this.log.warn({ err: e }, 'heartbeat failed'));
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
    // run() resolves only when the worker closes; errors surface through 'error'.
    this.worker.run().catch((e: unknown) => this.log.error({ err: e }, 'worker stopped with an error'));
    await this.worker.waitUntilReady();
    this.telemetry.ready(info.id, info.dtype, () => this.redis.ping());
    this.log.info({ workerId: this.id, model: info.id, revision: info.revision, queue: this.queue, concurrency: concurrencyOf(this.cfg) }, 'worker ready');
  }

  /** Stops taking jobs, lets active ones finish (up to the shutdown timeout), then releases everything. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  /**
   * Ends the records of jobs the queue ended without a run writing them (a job
   * that stalled past the limit fails in BullMQ without its processor running),
   * and sweeps for jobs that never reached the queue. Every worker does both:
   * the queue's event stream outlives the process that made a failure, and
   * every write is atomic and idempotent, so workers doing it at once write once.
   */
  private async startReconciling(store: JobStore): Promise<void> {
    const reconciler = new JobReconciler(store, () => Date.now(), {
      onReconciled: (jobId, error) => {
        this.telemetry.jobFailed(error.code);
        this.log.warn({ jobId, code: error.code, reason: error.message }, 'the queue ended the job without a result: its record is failed');
      },
      onGiveUp: (jobId, err) => this.log.error({ jobId, err }, 'could not end the record of a job the queue ended; its TTL removes it'),
    });
    const sink = (err: Error, connection: string): void => this.log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');
    // Reads the queue's event stream with a blocking XREAD: a connection of its own.
    this.eventsRedis = createRedis(redisTargets(this.cfg).queue, 'subscriber', 'worker-events', sink);
    // This pool's queue: each pool's own workers reconcile what it ends.
    const events = new QueueEvents(this.queue, { connection: this.eventsRedis, prefix: this.keys.bull() });
    events.on('failed', ({ jobId, failedReason }) => void reconciler.failed(jobId, failedReason));
    // A run that returned one of its outcomes found the record ended (or held by a newer run): no write needed, so
    // every worker does not run a script for every job; anything else (a defect) is still reconciled.
    events.on('completed', ({ jobId, returnvalue }) => {
      if (!RUN_OUTCOMES.has(String(returnvalue))) void reconciler.completed(jobId);
    });
    events.on('error', (e) => this.log.warn({ err: e }, 'queue events error'));
    this.queueEvents = events;
    await events.waitUntilReady();
    if (this.cfg.JOB_SWEEP_INTERVAL_MS === 0) return;
    // The pending index is shared by every pool: each record is looked for on its own model's queue, so a
    // worker sweeps the jobs of pools with no worker too (the key as BullMQ's `toKey` spells it).
    const sweeper = new JobSweeper(store, poolHolds(this.redis, this.keys), {
      graceMs: this.cfg.JOB_SWEEP_GRACE_MS,
      batch: this.cfg.JOB_SWEEP_BATCH,
    });
    let sweeping = false;
    this.sweeping = setInterval(() => {
      if (sweeping) return;
      sweeping = true;
      sweeper
        .tick(Date.now())
        .then(
          (r) => {
            for (const jobId of r.failed) {
              this.telemetry.jobFailed('enqueue_lost');
              this.log.warn({ jobId }, 'the job never reached the queue: its record is failed (enqueue_lost)');
            }
          },
          (e: unknown) => this.log.warn({ err: e }, 'job sweep failed; retrying at the next tick'),
        )
        .finally(() => (sweeping = false));
    }, this.cfg.JOB_SWEEP_INTERVAL_MS);
    this.sweeping.unref();
  }

  /** Bad jobs fail at once and are counted (a producer out of step with this worker). */
  private invalidJob(message: string): UnrecoverableError {
    this.telemetry.jobFailed('invalid_job');
    return new UnrecoverableError(message);
  }

  /**
   * Every step is bounded by what is left of SHUTDOWN_TIMEOUT_MS, so that the
   * process ends in time whatever state Redis and the jobs are in.
   */
  private async doStop(): Promise<void> {
    const timeoutMs = this.cfg.SHUTDOWN_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs;
    const left = (): number => Math.max(0, deadline - Date.now());
    this.telemetry.draining();
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.stopWatches();
    // Out of the registry first, so the gateway stops counting this worker; a Redis that is away would hold this forever.
    const registry = new WorkerRegistry(this.redis, this.keys);
    await settlesWithin(registry.withdraw(this.id), Math.min(WITHDRAW_TIMEOUT_MS, left()));
    // Stops taking jobs and waits for the active ones, whose locks BullMQ keeps renewing meanwhile.
    const closing = this.worker?.close() ?? Promise.resolve();
    if (await this.drained(closing, deadline)) {
      await settlesWithin(this.engine.dispose(), left());
      await this.closeConnections(Math.min(QUIT_TIMEOUT_MS, left()));
      return;
    }
    const active = this.telemetry.activeJobs;
    if (active > 0) {
      const lockMs = this.cfg.WORKER_LOCK_DURATION_MS;
      const stalledMs = this.cfg.WORKER_STALLED_INTERVAL_MS;
      this.log.warn(
        { timeoutMs, activeJobs: active, lockDurationMs: lockMs, stalledIntervalMs: stalledMs, rerunWithinMs: lockMs + stalledMs },
        'active jobs did not finish within SHUTDOWN_TIMEOUT_MS: abandoning them; their locks expire and the stalled check of another worker re-runs them, after about WORKER_LOCK_DURATION_MS + WORKER_STALLED_INTERVAL_MS',
      );
    } else {
      this.log.warn({ timeoutMs }, 'no job is running but the queue did not close (Redis unreachable?); dropping the connections');
    }
    // Connections first: what the abandoned runs do from here on (a rejection, a late token) must never reach Redis.
    this.sub.disconnect();
    this.eventsRedis?.disconnect();
    this.cacheRedis.disconnect();
    this.redis.disconnect();
    await settlesWithin(this.engine.dispose({ force: true }), ENGINE_ABORT_MS);
  }

  /**
   * Whether BullMQ's close settles before `deadline`. With no job running, the
   * close only waits on Redis round trips: once those take longer than
   * IDLE_CLOSE_MS, Redis is away and waiting for the deadline gains nothing.
   */
  private async drained(closing: Promise<void>, deadline: number): Promise<boolean> {
    const started = Date.now();
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      if (await settlesWithin(closing, Math.min(DRAIN_POLL_MS, left))) return true;
      if (this.telemetry.activeJobs === 0 && Date.now() - started >= IDLE_CLOSE_MS) return false;
    }
  }

  /**
   * Refuses to start on a Redis Cluster node, a Sentinel or an evicting Redis,
   * then re-checks periodically: the eviction policy can be changed while the
   * worker runs, and readiness must then turn false.
   */
  private async checkRedisSafety(): Promise<void> {
    await assertQueueRedisSafe(this.redis);
    let wasUnsafe = false;
    this.safety = new RedisSafetyWatch(this.redis, {
      intervalMs: this.cfg.REDIS_SAFETY_CHECK_INTERVAL_MS,
      onCheck: (problem) => {
        this.telemetry.redisSafety(problem);
        if (problem !== null) this.log.error({ problem }, 'QUEUE REDIS IS UNSAFE: jobs may be evicted and lost; not ready until it is fixed');
        else if (wasUnsafe) this.log.info('queue Redis is safe again (noeviction); ready');
        wasUnsafe = problem !== null;
      },
    });
    this.safety.start();
  }

  /** Timers that re-check Redis; none may keep running once shutdown starts. */
  private stopWatches(): void {
    this.safety?.stop();
    if (this.sweeping) clearInterval(this.sweeping);
    // Other workers reconcile what the queue ends from here on.
    this.queueEvents?.close().catch(() => undefined);
  }

  private async closeConnections(ms: number): Promise<void> {
    this.sub.disconnect();
    this.eventsRedis?.disconnect();
    await Promise.all([this.cacheRedis !== this.redis ? closeRedis(this.cacheRedis, ms) : null, closeRedis(this.redis, ms)]);
  }
}
