import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { poolQueue, type InferenceJobData, type RedisKeys } from '@fastvlm/contracts';
import { ArrivalCounter } from '@fastvlm/autoscaling';
import { FairDispatcher, FairQueue } from '@fastvlm/jobs';

/** One model's pool as the gateway feeds it: the queue its workers consume, and its arrivals for the autoscaler. */
export interface Pool {
  model: string;
  queue: Queue;
  /** Jobs its queue took as new, flushed once a second (`arrivals` of the queue's autoscaling signals). */
  arrivals: ArrivalCounter;
  /** Where its async and batch jobs wait, shared fairly between tenants. */
  fair: FairQueue<InferenceJobData>;
  /** Feeds `queue` from `fair` (every gateway runs one per pool it sends work to). */
  dispatcher: FairDispatcher;
}

export interface PoolOptions {
  /** Runs of a job that fails with a transient error. */
  attempts: number;
  /** Lower-class jobs the dispatcher keeps waiting in a pool's queue. */
  dispatchTarget: number;
  /** A lower-class job waiting this long in a pool's queue is raised to the interactive priority. */
  agingMs: number;
  /** Milliseconds between two dispatcher ticks. */
  dispatchIntervalMs: number;
}

/**
 * The pools this gateway has sent work to, made on first use: routing only
 * asks for models it serves (configured, or announced by live workers), so
 * the set stays as small as the models. Every queue and counter shares the
 * gateway's fail-fast command connection.
 */
export class Pools {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly opts: PoolOptions,
    private readonly log: Logger,
  ) {}

  /** The pool of a model id. */
  of(model: string): Pool {
    const known = this.pools.get(model);
    if (known) return known;
    if (this.closed) throw new Error('the gateway is shutting down');
    const name = poolQueue(model);
    const queue = new Queue(name, {
      connection: this.redis,
      prefix: this.keys.bull(),
      defaultJobOptions: {
        attempts: this.opts.attempts,
        backoff: { type: 'exponential', delay: 1000 },
        // Keep completed jobs by age and count: removing them at once makes
        // waitUntilFinished-style readers miss results, and finished jobs help debugging.
        removeOnComplete: { age: 3600, count: 10_000 },
        // Failed jobs are the dead-letter store: kept a week for inspection.
        removeOnFail: { age: 7 * 86_400 },
      },
    });
    queue.on('error', (err) => this.log.warn({ err: err.message, queue: name }, 'queue connection error'));
    // In memory per request; one INCRBY a second over the fail-fast connection, only when jobs arrived.
    const arrivals = new ArrivalCounter(this.redis, this.keys, name, {
      onLost: (count, err) => this.log.warn({ err, count, queue: name }, 'arrival count lost: its write failed after it was sent (counted at most once)'),
    });
    arrivals.start();
    const fair = new FairQueue<InferenceJobData>(this.redis, this.keys, name);
    const dispatcher = new FairDispatcher(fair, queue, {
      target: this.opts.dispatchTarget,
      ageMs: this.opts.agingMs,
      intervalMs: this.opts.dispatchIntervalMs,
      onError: (err) => this.log.warn({ err: err instanceof Error ? err.message : String(err), queue: name }, 'fair dispatch failed; the next tick tries again'),
    });
    dispatcher.start();
    const pool: Pool = { model, queue, arrivals, fair, dispatcher };
    this.pools.set(model, pool);
    return pool;
  }

  /** Flushes the last second's arrivals (bounded wait) and closes the queues; the connection is the caller's. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    await Promise.all(pools.map((p) => p.dispatcher.stop()));
    await Promise.all(pools.map((p) => p.arrivals.close()));
    await Promise.all(pools.map((p) => p.queue.close().catch(() => undefined)));
  }
}
