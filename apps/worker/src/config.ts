import { z } from 'zod';
import { LogEnvSchema, ModelEnvSchema, RedisEnvSchema, parseEnv } from '@fastvlm/contracts';

const int = (min: number) => z.coerce.number().int().min(min);

const WorkerEnvSchema = RedisEnvSchema.extend(ModelEnvSchema.shape)
  .extend(LogEnvSchema.shape)
  .extend({
    /** Jobs one worker process runs at once. */
    WORKER_CONCURRENCY: int(1).default(1),
    /** Milliseconds a job's lock lasts without renewal; a crashed worker's jobs are re-run after about this long. */
    WORKER_LOCK_DURATION_MS: int(1000).default(30_000),
    /** Milliseconds between checks for jobs whose worker died. */
    WORKER_STALLED_INTERVAL_MS: int(1000).default(30_000),
    /** Runs allowed for a job that fails with a transient error. */
    JOB_ATTEMPTS: int(1).default(3),
    /** Seconds a finished job's record and events are kept. */
    JOB_TTL_S: int(60).default(86_400),
    /** Seconds an answer stays in the cache Redis. */
    ANSWER_CACHE_TTL_S: int(1).default(3_600),
    /** Milliseconds SIGTERM waits for active jobs before giving up. */
    SHUTDOWN_TIMEOUT_MS: int(0).default(60_000),
    /** onnxruntime intra-op threads (0 = onnxruntime's default). */
    FASTVLM_THREADS: int(0).default(0),
  });

export type WorkerConfig = z.infer<typeof WorkerEnvSchema>;

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env): WorkerConfig {
  return parseEnv(WorkerEnvSchema, env);
}
