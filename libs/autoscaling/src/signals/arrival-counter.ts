import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { FlushLoop } from './flush-loop';
import { SIGNAL_FLUSH_MS } from './layout';
import { writeSignals } from './signal-write';

/** Milliseconds a final flush at shutdown may take before the process goes on without it. */
export const FINAL_FLUSH_TIMEOUT_MS = 1_000;

export interface ArrivalCounterOptions {
  /** Milliseconds between two flushes. Default SIGNAL_FLUSH_MS (1 s). */
  flushMs?: number;
  /** Told of arrivals dropped because the write carrying them failed after it was sent (see `WriteOutcome`). */
  onLost?: (count: number, error: unknown) => void;
}

/**
 * The gateway's `arrivals` signal: jobs added to a queue, counted in memory and
 * added to the queue's `arrivals` counter with one INCRBY per flush (once a
 * second, only when something arrived). Nothing per request touches Redis.
 *
 * While Redis is away nothing is sent and the count grows; the next flush Redis
 * takes adds all of it. A write whose reply fails is dropped rather than sent
 * again (at-most-once: it may have been applied), and reported to `onLost`.
 */
export class ArrivalCounter {
  private pending = 0;
  private readonly key: string;
  private readonly loop: FlushLoop<number>;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
    /** The BullMQ queue the jobs were added to (one counter per model pool). */
    readonly queue: string,
    private readonly opts: ArrivalCounterOptions = {},
  ) {
    this.key = keys.autoscale(queue, 'arrivals');
    this.loop = new FlushLoop(() => this.flushOnce(), opts.flushMs ?? SIGNAL_FLUSH_MS);
  }

  /** Counts `n` jobs added to the queue (never a cached answer, nor a request joined to a job in flight). */
  add(n = 1): void {
    this.pending += n;
  }

  /** Arrivals counted and not yet written. */
  get unflushed(): number {
    return this.pending;
  }

  /** Starts the periodic flush. */
  start(): void {
    this.loop.start();
  }

  /** Writes what was counted now (after any flush in progress); resolves to how many arrivals it wrote. */
  flush(): Promise<number> {
    return this.loop.flush();
  }

  /** Stops the periodic flush and writes what is left, waiting at most `timeoutMs`. */
  async close(timeoutMs = FINAL_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.loop.stop(timeoutMs);
  }

  private async flushOnce(): Promise<number> {
    const n = this.pending;
    if (n === 0) return 0;
    this.pending = 0;
    const { outcome, error } = await writeSignals(this.redis, () => this.redis.incrby(this.key, n));
    switch (outcome) {
      case 'sent':
        return n;
      case 'unsent':
        this.pending += n;
        return 0;
      case 'unknown':
        this.opts.onLost?.(n, error);
        return 0;
    }
  }
}
