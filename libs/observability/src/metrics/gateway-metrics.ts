import { MetricsRegistry } from './registry';

/** Cache levels, as the `level` label spells them. */
export type CacheLevel = 'answer_l1' | 'answer_l2' | 'vision';

/** What a failed cache call was doing. */
export type CacheOp = 'get' | 'set';

/** One model pool's queue, as the depth gauges label it. */
export interface PoolQueueSnapshot extends QueueSnapshot {
  model: string;
  queue: string;
}

export interface QueueSnapshot {
  /** Jobs by BullMQ state. */
  counts: Record<string, number>;
  /** Seconds the oldest waiting job has waited; 0 when none waits. */
  oldestWaitSeconds: number;
}

/** What the gateway measures. Scrape-time readers are registered by the app, which owns Redis. */
export class GatewayMetrics {
  readonly registry: MetricsRegistry;
  private readonly requests;
  private readonly duration;
  private readonly hits;
  private readonly misses;
  private readonly cacheErrors;
  private readonly rejections;
  private readonly webhookDeliveries;
  private readonly batchRequests;
  private readonly batches;

  constructor(
    onError?: (err: unknown) => void,
    /** The configured models: their cache series exist from the start. */
    models: readonly string[] = [],
  ) {
    this.registry = new MetricsRegistry('fastvlm-gateway', onError);
    this.requests = this.registry.counter('requests');
    this.duration = this.registry.histogram('requestDuration');
    this.hits = this.registry.counter('cacheHits');
    this.misses = this.registry.counter('cacheMisses');
    this.cacheErrors = this.registry.counter('cacheErrors');
    this.rejections = this.registry.counter('rejections');
    this.webhookDeliveries = this.registry.counter('webhookDeliveries');
    this.batchRequests = this.registry.counter('batchRequests');
    this.batches = this.registry.counter('batches');
    for (const status of ['delivered', 'failed', 'circuit_open', 'refused']) this.webhookDeliveries(0, { status });
    for (const outcome of ['completed', 'failed']) this.batchRequests(0, { outcome });
    for (const status of ['completed', 'failed', 'expired', 'cancelled']) this.batches(0, { status });
    // Series that exist from the start make rate() and hit ratios defined before the first lookup.
    for (const model of models) {
      for (const level of ['answer_l1', 'answer_l2'] as const) {
        this.hits(0, { model, level });
        this.misses(0, { model, level });
      }
    }
    // The gateway only reads the cache Redis (workers write it).
    this.cacheErrors(0, { level: 'answer_l2', op: 'get' });
  }

  /** One webhook delivery attempt (or one held back by its endpoint's circuit), by the status its log entry has. */
  webhookDelivery(status: string): void {
    this.webhookDeliveries(1, { status });
  }

  /** A batch request got its line: `completed` in the output file, `failed` in the error file. */
  batchRequest(outcome: 'completed' | 'failed', n = 1): void {
    this.batchRequests(n, { outcome });
  }

  /** A batch ended. */
  batchEnded(status: 'completed' | 'failed' | 'expired' | 'cancelled'): void {
    this.batches(1, { status });
  }

  /** One answered HTTP request; `route` is the route template (bounded), never the raw URL. */
  httpRequest(route: string, method: string, status: number, seconds: number): void {
    this.requests(1, { route, method, status: String(status) });
    this.duration(seconds, { route, method });
  }

  /** One lookup of an answer for a request routed to `model`'s pool. */
  cacheLookup(model: string, level: CacheLevel, hit: boolean): void {
    (hit ? this.hits : this.misses)(1, { model, level });
  }

  /** A cache Redis call that failed or timed out (and was served as a miss). */
  cacheError(level: CacheLevel, op: CacheOp): void {
    this.cacheErrors(1, { level, op });
  }

  rejected(reason: string): void {
    this.rejections(1, { reason });
  }

  /** Every pool's queue, read at scrape time. */
  observeQueues(read: () => Promise<PoolQueueSnapshot[]>): void {
    // Both gauges come from one read per scrape: the collector calls every
    // callback before any of them settles, so they share the pending read.
    let pending: Promise<PoolQueueSnapshot[]> | null = null;
    const once = (): Promise<PoolQueueSnapshot[]> => {
      pending ??= read().finally(() => {
        pending = null;
      });
      return pending;
    };
    this.registry.observeGauge('queueDepth', async (emit) => {
      for (const p of await once()) for (const [state, n] of Object.entries(p.counts)) emit(n, { model: p.model, queue: p.queue, state });
    });
    this.registry.observeGauge('queueOldestWait', async (emit) => {
      for (const p of await once()) emit(p.oldestWaitSeconds, { model: p.model, queue: p.queue });
    });
  }

  /** Live workers by model. */
  observeWorkers(read: () => Promise<Record<string, number>>): void {
    this.registry.observeGauge('workersAlive', async (emit) => {
      for (const [model, n] of Object.entries(await read())) emit(n, { model });
    });
  }

  /** Model load failures reported by workers, by model. */
  observeModelLoadFailures(read: () => Promise<Record<string, number>>): void {
    this.registry.observeCounter('modelLoadFailures', async (emit) => {
      for (const [model, n] of Object.entries(await read())) emit(n, { model });
    });
  }

  /** 1 while `read` says the queue Redis is unsafe (it may evict), 0 otherwise; read at scrape time. */
  observeQueueRedisUnsafe(read: () => boolean): void {
    this.registry.observeGauge('queueRedisUnsafe', (emit) => emit(read() ? 1 : 0, {}));
  }

  scrape(): Promise<string> {
    return this.registry.scrape();
  }
}
