import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { QueueEvents, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { INFERENCE_JOB, INFERENCE_QUEUE, InferenceJobDataSchema, RedisKeys } from '@fastvlm/contracts';
import {
  AnswerCache,
  ImageStore,
  JobFailure,
  JobReconciler,
  JobStore,
  JobSweeper,
  WorkerRegistry,
  assertNoEviction,
  createRedis,
  processInferenceJob,
  type InferenceEngine,
  type ProcessOutcome,
} from '@fastvlm/jobs';
import { WorkerMetrics } from '@fastvlm/observability';
import { Cancellations } from './cancellations';
import type { WorkerConfig } from './config';
import { WorkerTelemetry } from './telemetry/job-telemetry';
import { WorkerStatus } from './telemetry/worker-status';

const HEARTBEAT_MS = 5_000;

/** Engine as the worker owns it: warmed before the first job, disposed at shutdown. */
export interface OwnedEngine extends InferenceEngine {
  dispose(): Promise<void>;
}

/**
 * One worker process: consumes the inference queue with a loaded, warmed
 * model, and drains cleanly on SIGTERM.
 */
export class WorkerApp {
  readonly id = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  private readonly redis: Redis;
  private readonly cacheRedis: Redis;
  private readonly sub: Redis;
  private readonly keys: RedisKeys;
  private worker: Worker | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopping: Promise<void> | null = null;
  private queueEvents: QueueEvents | null = null;
  private sweeping: NodeJS.Timeout | null = null;

  constructor(
    private readonly cfg: WorkerConfig,
    private readonly engine: OwnedEngine,
    private readonly log: Logger,
    private readonly telemetry = new WorkerTelemetry(new WorkerMetrics(), new WorkerStatus()),
  ) {
    this.keys = new RedisKeys(cfg.FASTVLM_REDIS_PREFIX);
    const sink = (err: Error, connection: string): void => log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');
    this.redis = createRedis(cfg.REDIS_URL, 'consumer', `worker:${this.id}`, sink);
    this.cacheRedis = cfg.CACHE_REDIS_URL ? createRedis(cfg.CACHE_REDIS_URL, 'consumer', 'worker-cache', sink) : this.redis;
    this.sub = createRedis(cfg.REDIS_URL, 'subscriber', 'worker-sub', sink);
  }

  async start(): Promise<void> {
    await assertNoEviction(this.redis);
    const store = new JobStore(this.redis, this.keys, this.cfg.JOB_TTL_S);
    const images = new ImageStore(this.redis, this.keys, 1);
    const answers = new AnswerCache(this.cacheRedis, this.keys, { l1MaxBytes: 0, l2TtlSeconds: this.cfg.ANSWER_CACHE_TTL_S });
    const cancellations = new Cancellations(this.sub, this.keys.cancelChannel());
    await cancellations.start();
    const deps = { store, images, answers, engine: this.engine, now: () => Date.now() };

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
    const processor = (job: Job): Promise<ProcessOutcome> => this.telemetry.inJob(job.data, () => handle(job));

    this.worker = new Worker(INFERENCE_QUEUE, processor, {
      connection: this.redis,
      prefix: this.keys.bull(),
      concurrency: this.cfg.WORKER_CONCURRENCY ?? this.cfg.FASTVLM_MAX_BATCH,
      lockDuration: this.cfg.WORKER_LOCK_DURATION_MS,
      stalledInterval: this.cfg.WORKER_STALLED_INTERVAL_MS,
      autorun: false,
    });
    this.worker.on('error', (e) => this.log.error({ err: e }, 'queue error'));
    await this.startReconciling(store, this.worker);

    const registry = new WorkerRegistry(this.redis, this.keys);
    const info = this.engine.info;
    await registry.announce(
      { id: this.id, model: info.id, revision: info.revision, dtype: info.dtype, device: info.device, pid: process.pid, startedAt: Date.now() },
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
    this.log.info({ workerId: this.id, model: info.id, revision: info.revision, concurrency: this.cfg.WORKER_CONCURRENCY ?? this.cfg.FASTVLM_MAX_BATCH }, 'worker ready');
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
  private async startReconciling(store: JobStore, worker: Worker): Promise<void> {
    const reconciler = new JobReconciler(store, () => Date.now(), {
      onReconciled: (jobId, error) => {
        this.telemetry.jobFailed(error.code);
        this.log.warn({ jobId, code: error.code, reason: error.message }, 'the queue ended the job without a result: its record is failed');
      },
      onGiveUp: (jobId, err) => this.log.error({ jobId, err }, 'could not end the record of a job the queue ended; its TTL removes it'),
    });
    const sink = (err: Error, connection: string): void => this.log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');
    // Reads the queue's event stream with a blocking XREAD: a connection of its own.
    const events = new QueueEvents(INFERENCE_QUEUE, { connection: createRedis(this.cfg.REDIS_URL, 'subscriber', 'worker-events', sink), prefix: this.keys.bull() });
    events.on('failed', ({ jobId, failedReason }) => void reconciler.failed(jobId, failedReason));
    events.on('completed', ({ jobId }) => void reconciler.completed(jobId));
    events.on('error', (e) => this.log.warn({ err: e }, 'queue events error'));
    this.queueEvents = events;
    await events.waitUntilReady();
    if (this.cfg.JOB_SWEEP_INTERVAL_MS === 0) return;
    const sweeper = new JobSweeper(store, (id) => worker.toKey(id), { graceMs: this.cfg.JOB_SWEEP_GRACE_MS, batch: this.cfg.JOB_SWEEP_BATCH });
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

  private async doStop(): Promise<void> {
    this.telemetry.draining();
    if (this.heartbeat) clearInterval(this.heartbeat);
    const registry = new WorkerRegistry(this.redis, this.keys);
    await registry.withdraw(this.id).catch(() => undefined);
    if (this.worker) {
      const closing = this.worker.close();
      const timedOut = await Promise.race([
        closing.then(() => false),
        new Promise<boolean>((r) => setTimeout(() => r(true), this.cfg.SHUTDOWN_TIMEOUT_MS).unref()),
      ]);
      if (timedOut) {
        this.log.warn({ timeoutMs: this.cfg.SHUTDOWN_TIMEOUT_MS }, 'active jobs did not finish in time; they will be re-run elsewhere');
        await this.worker.close(true);
      }
    }
    await this.engine.dispose();
    this.sub.disconnect();
    if (this.cacheRedis !== this.redis) await this.cacheRedis.quit();
    await this.redis.quit();
  }
}
