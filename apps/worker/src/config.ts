import { z } from 'zod';
import { LogEnvSchema, ModelEnvSchema, RedisEnvShape, checkRedisTopology, envBoolean, parseEnv } from '@fastvlm/contracts';
import { DEFAULT_USAGE_RETENTION_DAYS } from '@fastvlm/jobs';
import { TracingEnvSchema } from '@fastvlm/observability';

const int = (min: number) => z.coerce.number().int().min(min);

export const WorkerEnvSchema = z.object(RedisEnvShape).extend(ModelEnvSchema.shape)
  .extend(LogEnvSchema.shape)
  .extend(TracingEnvSchema.shape)
  .extend({
    /** Port of the worker's HTTP server (/metrics, /health/live, /health/ready); 0 picks a free one (logged at start). */
    WORKER_HTTP_PORT: int(0).max(65_535).default(9464),
    /** Address of the worker's HTTP server; containers set 0.0.0.0 so Prometheus and the kubelet reach it. */
    WORKER_HTTP_HOST: z.string().min(1).default('127.0.0.1'),
    /** Jobs one worker process takes at once (default FASTVLM_MAX_BATCH, so that the engine can batch them). */
    WORKER_CONCURRENCY: int(1).optional(),
    /** Sequences the engine decodes together at most (continuous batching). */
    FASTVLM_MAX_BATCH: int(1).max(256).default(8),
    /** Milliseconds an idle engine waits after a job arrives for others to batch with it. */
    FASTVLM_BATCH_WINDOW_MS: int(0).max(1000).default(5),
    /** Weight format: one of fp32, fp16, q4, q4f16, int8, uint8, quantized, bnb4, or per session (`vision_encoder=q4f16,…`). */
    FASTVLM_DTYPE: z.string().optional(),
    /** `crop` (the export's processor: shortest edge, centre crop) or `pad` (Apple's pad-to-square, nothing cropped). */
    FASTVLM_IMAGE_ASPECT: z.enum(['crop', 'pad']).default('crop'),
    /** Execution device. `cuda` needs onnxruntime-node's CUDA provider (the worker-cuda image). */
    FASTVLM_DEVICE: z.enum(['cpu', 'cuda']).default('cpu'),
    /** Bytes of image features kept in this process (0 disables the in-process vision cache). */
    VISION_CACHE_L1_BYTES: int(0).default(256 * 1024 * 1024),
    /** Seconds image features live in the cache Redis (0 disables the shared vision cache). */
    VISION_CACHE_TTL_S: int(0).default(3_600),
    /**
     * Milliseconds a job's lock lasts without renewal (BullMQ renews it every half of this). A crashed
     * worker's jobs are re-run after about WORKER_LOCK_DURATION_MS + WORKER_STALLED_INTERVAL_MS. A run
     * that loses its lock (a pause longer than this) cannot write the job any more (fencing), so a short
     * lock is safe; too short makes slow event loops lose locks they still need. Default 15 s.
     */
    WORKER_LOCK_DURATION_MS: int(1000).default(15_000),
    /** Milliseconds between checks for jobs whose worker died (their lock expired); each check is one Lua script per queue. Default 5 s. */
    WORKER_STALLED_INTERVAL_MS: int(1000).default(5_000),
    /** Runs allowed for a job that fails with a transient error. */
    JOB_ATTEMPTS: int(1).default(3),
    /** Seconds a finished job's record and events are kept. */
    JOB_TTL_S: int(60).default(86_400),
    /** Seconds an answer stays in the cache Redis. */
    ANSWER_CACHE_TTL_S: int(1).default(3_600),
    /**
     * Milliseconds a SIGTERM shutdown may take, every step included (registry withdrawal, waiting for
     * active jobs, closing Redis). Jobs still running then are abandoned, not finished: their locks
     * expire and another worker re-runs them about WORKER_LOCK_DURATION_MS + WORKER_STALLED_INTERVAL_MS
     * later. The process exits at most a few seconds after it. Default 60 s.
     */
    SHUTDOWN_TIMEOUT_MS: int(0).default(60_000),
    /** onnxruntime intra-op threads (0 = onnxruntime's default). */
    FASTVLM_THREADS: int(0).default(0),
    /** Hugging Face hub (or mirror) that hub ids in FASTVLM_MODEL are pulled from. */
    HF_ENDPOINT: z.string().url().default('https://huggingface.co'),
    /** Token for private and gated repos; sent to HF_ENDPOINT only, never to the CDN it redirects to. */
    HF_TOKEN: z.string().optional(),
    /** Never download: the model must already be in FASTVLM_CACHE_DIR. */
    HF_HUB_OFFLINE: envBoolean.default(false),
    /** Milliseconds between re-checks that the queue Redis still uses maxmemory-policy noeviction (readiness is false while it does not). Default 30 s. */
    REDIS_SAFETY_CHECK_INTERVAL_MS: int(100).default(30_000),
    /** Milliseconds between sweeps for jobs that never reached the queue (0 disables the sweeper). Default 10 s. */
    JOB_SWEEP_INTERVAL_MS: int(0).default(10_000),
    /**
     * Milliseconds a job record may wait for its queue job before the sweeper fails it `enqueue_lost`;
     * must outlast the longest gap between a gateway creating a record and its enqueue landing. Default 60 s.
     */
    JOB_SWEEP_GRACE_MS: int(1000).default(60_000),
    /** Pending job ids one sweep looks at, at most (the cost of a sweep is bounded by it, not by the keyspace). Default 200. */
    JOB_SWEEP_BATCH: int(1).max(10_000).default(200),
    /** Days each hour of usage (per tenant, in the queue Redis) is kept from the hour's start. Default 400 (a year and a month of invoices). */
    USAGE_RETENTION_DAYS: int(1).max(3_650).default(DEFAULT_USAGE_RETENTION_DAYS),
  });

export type WorkerConfig = z.infer<typeof WorkerEnvSchema>;

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return parseEnv(WorkerEnvSchema.superRefine(checkRedisTopology), env);
}
