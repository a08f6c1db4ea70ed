import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { FINAL_FLUSH_TIMEOUT_MS } from './arrival-counter';
import { FlushLoop } from './flush-loop';
import { LOADING_STALE_MS, SIGNAL_FLUSH_MS, STARTUP_KEEP } from './layout';
import { execOrThrow, writeSignals } from './signal-write';
import type { WorkMeter, WorkTotals } from './work-meter';

/** Milliseconds between two renewals of a loading worker's entry: three per LOADING_STALE_MS, so one lost renewal is not a crash. */
export const LOADING_HEARTBEAT_MS = LOADING_STALE_MS / 3;

export interface WorkPublisherOptions {
  /** Milliseconds between two flushes. Default SIGNAL_FLUSH_MS (1 s). */
  flushMs?: number;
  /** Told of totals dropped because the write carrying them failed after it was sent (at-most-once). */
  onLost?: (totals: WorkTotals, error: unknown) => void;
}

/**
 * A worker's `completions` counter and `work` hash: what its `WorkMeter` took
 * since the last flush, written in one MULTI once a second, only when
 * something changed. While Redis is away nothing is sent and the meter keeps
 * accumulating; a write whose reply failed is dropped (at-most-once).
 */
export class WorkPublisher {
  private readonly completionsKey: string;
  private readonly workKey: string;
  private readonly loop: FlushLoop<WorkTotals | null>;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
    readonly queue: string,
    private readonly meter: WorkMeter,
    private readonly opts: WorkPublisherOptions = {},
  ) {
    this.completionsKey = keys.autoscale(queue, 'completions');
    this.workKey = keys.autoscale(queue, 'work');
    this.loop = new FlushLoop(() => this.flushOnce(), opts.flushMs ?? SIGNAL_FLUSH_MS);
  }

  start(): void {
    this.loop.start();
  }

  /** Writes what the meter took now; resolves to the totals written, or null when none were. */
  flush(): Promise<WorkTotals | null> {
    return this.loop.flush();
  }

  /** Stops the periodic flush and writes what is left, waiting at most `timeoutMs`. */
  async close(timeoutMs = FINAL_FLUSH_TIMEOUT_MS): Promise<void> {
    await this.loop.stop(timeoutMs);
  }

  private async flushOnce(): Promise<WorkTotals | null> {
    const t = this.meter.take();
    if (!t) return null;
    const { outcome, error } = await writeSignals(this.redis, () => {
      const m = this.redis.multi();
      if (t.completions > 0) m.incrby(this.completionsKey, t.completions);
      for (const field of ['busyMs', 'busyDone', 'satMs', 'satDone'] as const) if (t[field] > 0) m.hincrby(this.workKey, field, t[field]);
      return execOrThrow(m);
    });
    switch (outcome) {
      case 'sent':
        return t;
      case 'unsent':
        this.meter.giveBack(t);
        return null;
      case 'unknown':
        this.opts.onLost?.(t, error);
        return null;
    }
  }
}

export interface StartupSignalsOptions {
  /** Clock in epoch milliseconds (the `loading` scores). Default Date.now. */
  now?: () => number;
  /** Milliseconds between renewals of the `loading` entry. Default LOADING_HEARTBEAT_MS (5 s). */
  heartbeatMs?: number;
  /** Told of the first failed write of an outage (later ones are silent until a write succeeds again). */
  onError?: (error: unknown) => void;
}

/**
 * A worker's start-up signals: its entry in `loading` (added at process start,
 * renewed while the model loads, removed when it is ready or gives up) and its
 * start-up time in `startup`. Best effort throughout: a Redis that is away
 * never delays or fails the load; the scaler ignores an entry that stopped
 * renewing (LOADING_STALE_MS).
 */
export class StartupSignals {
  private readonly loadingKey: string;
  private readonly startupKey: string;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | null = null;
  private loading = false;
  private failing = false;

  constructor(
    private readonly redis: Redis,
    keys: RedisKeys,
    readonly queue: string,
    /** The worker's id, the same it announces in the registry. */
    readonly workerId: string,
    private readonly opts: StartupSignalsOptions = {},
  ) {
    this.loadingKey = keys.autoscale(queue, 'loading');
    this.startupKey = keys.autoscale(queue, 'startup');
    this.now = opts.now ?? Date.now;
  }

  /**
   * Marks the worker as loading now and renews the mark every heartbeat; never waits. A connection not yet
   * ready (the usual case right after it is created) writes the mark as soon as it is.
   */
  startLoading(): void {
    if (this.loading) return;
    this.loading = true;
    this.redis.once('ready', this.onReady);
    void this.beat();
    this.timer = setInterval(() => void this.beat(), this.opts.heartbeatMs ?? LOADING_HEARTBEAT_MS);
    this.timer.unref();
  }

  /** Renews the loading mark now (the heartbeat's write; exposed for tests). */
  async beat(): Promise<void> {
    if (!this.loading) return;
    await this.write(() => this.redis.zadd(this.loadingKey, this.now(), this.workerId));
  }

  /**
   * The worker is ready: removes its loading mark and records `startupSeconds` (process start to ready),
   * keeping the newest STARTUP_KEEP, in one MULTI.
   */
  async ready(startupSeconds: number): Promise<void> {
    this.stopLoading();
    await this.write(() =>
      execOrThrow(
        this.redis
          .multi()
          .zrem(this.loadingKey, this.workerId)
          .lpush(this.startupKey, String(startupSeconds))
          .ltrim(this.startupKey, 0, STARTUP_KEEP - 1),
      ),
    );
  }

  /** The worker gives up (failed load, exit before ready): removes its loading mark. */
  async withdraw(): Promise<void> {
    this.stopLoading();
    await this.write(() => this.redis.zrem(this.loadingKey, this.workerId));
  }

  private readonly onReady = (): void => void this.beat();

  private stopLoading(): void {
    this.loading = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.redis.off('ready', this.onReady);
  }

  /** One best-effort write: the first failure of an outage is reported, then silence until one succeeds. */
  private async write(fn: () => Promise<unknown>): Promise<void> {
    const { outcome, error } = await writeSignals(this.redis, fn);
    if (outcome === 'sent') this.failing = false;
    else if (outcome === 'unknown' && !this.failing) {
      this.failing = true;
      this.opts.onError?.(error);
    }
  }
}
