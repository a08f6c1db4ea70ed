import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { StartupSignals, WorkMeter, WorkPublisher } from '@fastvlm/autoscaling';
import { RedisKeys, redisTargets } from '@fastvlm/contracts';
import { createRedis } from '@fastvlm/jobs';
import type { WorkerConfig } from '../config';
import { settlesWithin } from '../shutdown';

/** Milliseconds a withdrawal or the last flush may take at exit before the process goes on without it. */
const FINAL_WRITE_TIMEOUT_MS = 1_000;

/**
 * What this worker tells the autoscaler about its queue: that it is loading
 * (from process start until ready), how long its start-up took, and its job
 * activity (`completions` and the `work` hash, flushed once a second).
 *
 * Over a connection of its own that fails fast: while Redis is away a write is
 * refused at once instead of queueing, so the signals never hold up the model
 * load or a job, and a write is never replayed by the client (which could
 * count it twice). The connection is made at process start, before the load.
 */
export class AutoscaleSignals {
  /** Fed by the job loop: one `started` and one `ended` per processor run. */
  readonly meter: WorkMeter;
  private readonly redis: Redis;
  private readonly startup: StartupSignals;
  private readonly work: WorkPublisher;

  constructor(
    cfg: WorkerConfig,
    /** The worker's registry id. */
    workerId: string,
    queue: string,
    /** Jobs the worker runs at once (its BullMQ concurrency). */
    slots: number,
    log: Logger,
  ) {
    this.redis = createRedis(redisTargets(cfg).queue, 'producer', 'worker-signals', (err, connection) =>
      log.warn({ err: err.message, connection }, 'redis connection error (autoscaling signals); reconnecting'),
    );
    const keys = new RedisKeys(cfg.FASTVLM_REDIS_PREFIX);
    this.meter = new WorkMeter(slots);
    this.startup = new StartupSignals(this.redis, keys, queue, workerId, {
      onError: (err) => log.warn({ err }, 'could not write the loading signal; the model load goes on'),
    });
    this.work = new WorkPublisher(this.redis, keys, queue, this.meter, {
      onLost: (totals, err) => log.warn({ err, totals }, 'work signals lost: their write failed after it was sent (counted at most once)'),
    });
  }

  /** Process start: the worker counts as loading until `ready` or `failed`. Never waits. */
  loading(): void {
    this.startup.startLoading();
  }

  /** The worker announced itself: out of `loading`, its start-up seconds recorded, job activity flushed from now on. */
  async ready(startupSeconds: number): Promise<void> {
    this.work.start();
    await this.startup.ready(startupSeconds);
  }

  /** The load or the start failed: out of `loading`, then the connection closes. Bounded. */
  async failed(): Promise<void> {
    await settlesWithin(this.startup.withdraw(), FINAL_WRITE_TIMEOUT_MS);
    this.redis.disconnect();
  }

  /**
   * Shutdown, after the jobs drained: the last activity flushed and the loading mark removed (in case the
   * write at ready did not reach Redis), then the connection closes. Bounded.
   */
  async close(): Promise<void> {
    await Promise.all([this.work.close(FINAL_WRITE_TIMEOUT_MS), settlesWithin(this.startup.withdraw(), FINAL_WRITE_TIMEOUT_MS)]);
    this.redis.disconnect();
  }
}
