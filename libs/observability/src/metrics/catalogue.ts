/**
 * Every metric the apps export, in one place: the instruments are created from
 * these definitions, the README's table and the dashboard/alert tests read
 * them. Names follow vLLM and TGI (`vllm:time_to_first_token_seconds`,
 * `tgi_batch_current_size`) with a `fastvlm_` prefix, and are written here as
 * Prometheus shows them (counters end in `_total`). Every serving metric
 * (queue, latency, tokens, outcomes, caches) carries `model`, the model id of
 * the pool it is about: one gateway routes to several pools, and their
 * figures must not mix.
 */

/** Seconds, from a few milliseconds (cache hits, a short queue) to ten minutes (a long answer behind a long queue). */
export const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 120, 300, 600] as const;
/** Seconds between two output tokens: a GPU decodes in milliseconds, a busy CPU in hundreds. */
export const TOKEN_INTERVAL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5] as const;
/** Sequences decoded together. */
export const BATCH_BUCKETS = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64] as const;

export type PromType = 'counter' | 'gauge' | 'histogram';

/** The processes that export metrics. */
export type AppName = 'gateway' | 'worker' | 'scaler';

export interface MetricDef {
  /** Name as scraped. */
  readonly name: string;
  readonly type: PromType;
  readonly help: string;
  readonly labels: readonly string[];
  /** Which processes export it. */
  readonly apps: readonly AppName[];
  readonly buckets?: readonly number[];
}

export const METRICS = {
  requests: {
    name: 'fastvlm_requests_total',
    type: 'counter',
    help: 'HTTP requests answered by the gateway, by route template, method and status code.',
    labels: ['route', 'method', 'status'],
    apps: ['gateway'],
  },
  requestDuration: {
    name: 'fastvlm_request_duration_seconds',
    type: 'histogram',
    help: 'Time from receiving an HTTP request to the last byte of its answer (streams included), by route and method.',
    labels: ['route', 'method'],
    apps: ['gateway'],
    buckets: LATENCY_BUCKETS,
  },
  queueDepth: {
    name: 'fastvlm_queue_depth',
    type: 'gauge',
    help: "Jobs in each model pool's queue by BullMQ state (wait, prioritized, delayed, active, failed, completed), read at scrape time.",
    labels: ['model', 'queue', 'state'],
    apps: ['gateway'],
  },
  queueOldestWait: {
    name: 'fastvlm_queue_oldest_wait_seconds',
    type: 'gauge',
    help: "Age of the oldest job still waiting for a worker in each model pool's queue (0 when none waits), read at scrape time.",
    labels: ['model', 'queue'],
    apps: ['gateway'],
  },
  workersAlive: {
    name: 'fastvlm_workers_alive',
    type: 'gauge',
    help: 'Workers with a recent heartbeat (model loaded and warmed), by model.',
    labels: ['model'],
    apps: ['gateway'],
  },
  cacheHits: {
    name: 'fastvlm_cache_hits_total',
    type: 'counter',
    help: 'Cache lookups that found an entry, by model and level: answer_l1 (gateway memory), answer_l2 (Redis), vision (image features in the worker).',
    labels: ['model', 'level'],
    apps: ['gateway', 'worker'],
  },
  cacheMisses: {
    name: 'fastvlm_cache_misses_total',
    type: 'counter',
    help: 'Cache lookups that found nothing, by model and level (answer_l1, answer_l2, vision).',
    labels: ['model', 'level'],
    apps: ['gateway', 'worker'],
  },
  cacheErrors: {
    name: 'fastvlm_cache_errors_total',
    type: 'counter',
    help: 'Cache Redis calls that failed or timed out (CACHE_TIMEOUT_MS), served as misses or dropped writes, by level (answer_l2, vision) and op (get, set).',
    labels: ['level', 'op'],
    apps: ['gateway', 'worker'],
  },
  webhookDeliveries: {
    name: 'fastvlm_webhook_deliveries_total',
    type: 'counter',
    help: 'Webhook delivery attempts, by status: delivered (2xx), failed (retried with backoff), circuit_open (held back, no attempt spent), refused (a disabled endpoint).',
    labels: ['status'],
    apps: ['gateway'],
  },
  batchRequests: {
    name: 'fastvlm_batch_requests_total',
    type: 'counter',
    help: 'Batch API requests that got their line, by outcome: completed (the output file) or failed (the error file, expired and cancelled ones included).',
    labels: ['outcome'],
    apps: ['gateway'],
  },
  batches: {
    name: 'fastvlm_batches_total',
    type: 'counter',
    help: 'Batches that ended, by status (completed, failed, expired, cancelled).',
    labels: ['status'],
    apps: ['gateway'],
  },
  rejections: {
    name: 'fastvlm_rejections_total',
    type: 'counter',
    help: 'Requests the gateway refused, by reason (the error code: unauthorized, invalid_image, payload_too_large, ...).',
    labels: ['reason'],
    apps: ['gateway'],
  },
  modelLoadFailures: {
    name: 'fastvlm_model_load_failures_total',
    type: 'counter',
    help: 'Workers that failed to load or warm their model, by model (reported through Redis, since such a worker exits).',
    labels: ['model'],
    apps: ['gateway'],
  },
  queueWait: {
    name: 'fastvlm_queue_wait_seconds',
    type: 'histogram',
    help: 'Time from the gateway accepting a job to a worker starting it.',
    labels: ['model'],
    apps: ['worker'],
    buckets: LATENCY_BUCKETS,
  },
  timeToFirstToken: {
    name: 'fastvlm_time_to_first_token_seconds',
    type: 'histogram',
    help: 'Time from the gateway accepting a job to its first generated token (queue wait included, as vLLM counts it).',
    labels: ['model'],
    apps: ['worker'],
    buckets: LATENCY_BUCKETS,
  },
  timePerOutputToken: {
    name: 'fastvlm_time_per_output_token_seconds',
    type: 'histogram',
    help: 'Mean time between consecutive output tokens of one job (one observation per job with at least two tokens).',
    labels: ['model'],
    apps: ['worker'],
    buckets: TOKEN_INTERVAL_BUCKETS,
  },
  e2eLatency: {
    name: 'fastvlm_e2e_request_latency_seconds',
    type: 'histogram',
    help: 'Time from the gateway accepting a job to the worker storing its answer, by finish reason.',
    labels: ['model', 'finish_reason'],
    apps: ['worker'],
    buckets: LATENCY_BUCKETS,
  },
  batchSize: {
    name: 'fastvlm_batch_size',
    type: 'histogram',
    help: 'Sequences in each decoder step of the engine (1 when requests run one at a time).',
    labels: ['model'],
    apps: ['worker'],
    buckets: BATCH_BUCKETS,
  },
  promptTokens: {
    name: 'fastvlm_prompt_tokens_total',
    type: 'counter',
    help: 'Prompt tokens processed (image tokens included).',
    labels: ['model'],
    apps: ['worker'],
  },
  generationTokens: {
    name: 'fastvlm_generation_tokens_total',
    type: 'counter',
    help: 'Tokens generated.',
    labels: ['model'],
    apps: ['worker'],
  },
  requestSuccess: {
    name: 'fastvlm_request_success_total',
    type: 'counter',
    help: 'Jobs that finished with an answer, by finish reason (stop, length).',
    labels: ['model', 'finish_reason'],
    apps: ['worker'],
  },
  jobsFailed: {
    name: 'fastvlm_jobs_failed_total',
    type: 'counter',
    help: 'Jobs that failed for good (no retry left, or an error retrying cannot fix), by reason (the error code).',
    labels: ['model', 'reason'],
    apps: ['worker'],
  },
  jobsRunning: {
    name: 'fastvlm_jobs_running',
    type: 'gauge',
    help: 'Jobs this worker is running now.',
    labels: ['model'],
    apps: ['worker'],
  },
  unhandledRejections: {
    name: 'fastvlm_worker_unhandled_rejections_total',
    type: 'counter',
    help: 'Promise rejections no code handled, caught by the worker process handler (logged instead of killing the worker); any is a defect.',
    labels: [],
    apps: ['worker'],
  },
  modelLoaded: {
    name: 'fastvlm_model_loaded',
    type: 'gauge',
    help: '1 once the model is loaded and warmed up, 0 while the worker drains after SIGTERM (absent while it loads), with the model id and weight dtype.',
    labels: ['model', 'dtype'],
    apps: ['worker'],
  },
  queueRedisUnsafe: {
    name: 'fastvlm_queue_redis_unsafe',
    type: 'gauge',
    help: '1 while the last periodic check found the queue Redis unsafe (maxmemory-policy other than noeviction); readiness is false meanwhile. 0 otherwise.',
    labels: [],
    apps: ['gateway', 'worker'],
  },
  scalerDesiredReplicas: {
    name: 'fastvlm_scaler_desired_replicas',
    type: 'gauge',
    help: "Replicas each strategy asks for on a ScaledObject's signals at the scaler's latest tick (shadow mode: every strategy on the same signals); chosen=\"true\" marks the ScaledObject's own strategy, whose count KEDA gets.",
    labels: ['scaled_object', 'queue', 'strategy', 'chosen'],
    apps: ['scaler'],
  },
  scalerMode: {
    name: 'fastvlm_scaler_mode',
    type: 'gauge',
    help: 'Mode of the adaptive (Knative KPA) strategy on a ScaledObject\'s signals: 0 stable, 1 panic (load outruns the replicas there or on their way).',
    labels: ['scaled_object', 'queue'],
    apps: ['scaler'],
  },
  scalerForecastArrivals: {
    name: 'fastvlm_scaler_forecast_arrivals_per_second',
    type: 'gauge',
    help: 'Arrivals per second the predictive strategy forecasts over its horizon; absent until the arrival model has seen a day of minutes.',
    labels: ['scaled_object', 'queue'],
    apps: ['scaler'],
  },
  scalerActive: {
    name: 'fastvlm_scaler_active',
    type: 'gauge',
    help: 'Whether the scaler reports a ScaledObject\'s queue active (1: KEDA keeps at least one replica) or not (0: KEDA may scale to zero).',
    labels: ['scaled_object', 'queue'],
    apps: ['scaler'],
  },
  scalerSignal: {
    name: 'fastvlm_scaler_signal',
    type: 'gauge',
    help: 'What the scaler read of a queue at its latest tick, by signal: queued (waiting + prioritized + due delayed), active, ready and loading workers, arrivals_per_second (last 60 s), replica_capacity (jobs/s one worker completes, measured from the workers\' work totals; the prior 1 until measured), startup_seconds (90th percentile of recent worker start-ups; the prior 120 until measured).',
    labels: ['queue', 'signal'],
    apps: ['scaler'],
  },
  scalerGrpcRequests: {
    name: 'fastvlm_scaler_grpc_requests_total',
    type: 'counter',
    help: 'KEDA external-scaler gRPC calls answered, by method and gRPC status code (OK, INVALID_ARGUMENT, UNAVAILABLE, ...); a stream counts once, when it ends.',
    labels: ['method', 'code'],
    apps: ['scaler'],
  },
} as const satisfies Record<string, MetricDef>;

export type MetricKey = keyof typeof METRICS;
/** The label set a metric takes, checked at compile time. */
export type LabelsOf<K extends MetricKey> = Record<(typeof METRICS)[K]['labels'][number], string>;

/** Names of the metrics a given app exports. */
export function metricNames(app?: AppName): string[] {
  return Object.values(METRICS)
    .filter((m: MetricDef) => app === undefined || m.apps.includes(app))
    .map((m) => m.name);
}
