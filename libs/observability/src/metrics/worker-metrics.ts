import type { FinishReason, Usage } from '@fastvlm/contracts';
import { MetricsRegistry } from './registry';

export interface VisionCacheCounts {
  hits: number;
  misses: number;
}

/**
 * What a worker measures about its jobs and its engine. A worker serves one
 * model: every serving series carries its id as `model`.
 */
export class WorkerMetrics {
  readonly registry: MetricsRegistry;
  private readonly queueWait;
  private readonly ttft;
  private readonly tpot;
  private readonly e2e;
  private readonly batch;
  private readonly promptTokens;
  private readonly generationTokens;
  private readonly success;
  private readonly failed;
  private readonly running;
  private readonly unhandled;
  private readonly cacheErrors;
  private model: { model: string; dtype: string; loaded: boolean } | null = null;
  private readonly m: { model: string };

  constructor(
    /** The model id this worker serves (its pool's). */
    model: string,
    onError?: (err: unknown) => void,
  ) {
    this.m = { model };
    this.registry = new MetricsRegistry('fastvlm-worker', onError);
    this.queueWait = this.registry.histogram('queueWait');
    this.ttft = this.registry.histogram('timeToFirstToken');
    this.tpot = this.registry.histogram('timePerOutputToken');
    this.e2e = this.registry.histogram('e2eLatency');
    this.batch = this.registry.histogram('batchSize');
    this.promptTokens = this.registry.counter('promptTokens');
    this.generationTokens = this.registry.counter('generationTokens');
    this.success = this.registry.counter('requestSuccess');
    this.failed = this.registry.counter('jobsFailed');
    this.running = this.registry.upDown('jobsRunning');
    this.unhandled = this.registry.counter('unhandledRejections');
    this.unhandled(0, {});
    this.cacheErrors = this.registry.counter('cacheErrors');
    // Series that exist from the start make rate() defined before the first job.
    this.running(0, this.m);
    this.promptTokens(0, this.m);
    this.generationTokens(0, this.m);
    this.cacheErrors(0, { level: 'answer_l2', op: 'set' });
    this.registry.observeGauge('modelLoaded', (emit) => {
      if (this.model) emit(this.model.loaded ? 1 : 0, { model: this.model.model, dtype: this.model.dtype });
    });
  }

  /** The model this worker serves, and whether it is loaded, warmed and taking jobs. */
  setModel(model: string, dtype: string, loaded: boolean): void {
    this.model = { model, dtype, loaded };
  }

  jobStarted(queueWaitSeconds: number): void {
    this.queueWait(Math.max(0, queueWaitSeconds), this.m);
    this.running(1, this.m);
  }

  jobEnded(): void {
    this.running(-1, this.m);
  }

  firstToken(secondsSinceAccepted: number): void {
    this.ttft(Math.max(0, secondsSinceAccepted), this.m);
  }

  meanTokenInterval(seconds: number): void {
    this.tpot(seconds, this.m);
  }

  succeeded(finishReason: FinishReason, secondsSinceAccepted: number, usage: Usage): void {
    this.success(1, { ...this.m, finish_reason: finishReason });
    this.e2e(Math.max(0, secondsSinceAccepted), { ...this.m, finish_reason: finishReason });
    this.promptTokens(usage.promptTokens, this.m);
    this.generationTokens(usage.completionTokens, this.m);
  }

  /** A job failed for good (not a retried attempt). */
  jobFailed(reason: string): void {
    this.failed(1, { ...this.m, reason });
  }

  /** A promise rejection nothing handled (the process-level handler caught it). */
  unhandledRejection(): void {
    this.unhandled(1, {});
  }

  /** One decoder step over `rows` sequences. */
  batchStep(rows: number): void {
    this.batch(rows, this.m);
  }

  /** The engine's own vision-cache counters, read at scrape time. */
  observeVisionCache(read: () => VisionCacheCounts): void {
    this.registry.observeCounter('cacheHits', (emit) => emit(read().hits, { ...this.m, level: 'vision' }));
    this.registry.observeCounter('cacheMisses', (emit) => emit(read().misses, { ...this.m, level: 'vision' }));
  }

  /** 1 while `read` says the queue Redis is unsafe (it may evict), 0 otherwise; read at scrape time. */
  observeQueueRedisUnsafe(read: () => boolean): void {
    this.registry.observeGauge('queueRedisUnsafe', (emit) => emit(read() ? 1 : 0, {}));
  }

  scrape(): Promise<string> {
    return this.registry.scrape();
  }

  /** A cache Redis call that failed or timed out: an answer write dropped, or an image-feature lookup served as a miss. */
  cacheError(level: 'answer_l2' | 'vision', op: 'get' | 'set'): void {
    this.cacheErrors(1, { level, op });
  }
}
