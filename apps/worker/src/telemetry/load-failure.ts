import { RedisKeys, type RedisTarget } from '@fastvlm/contracts';
import { WorkerRegistry, createRedis, waitReady } from '@fastvlm/jobs';

/** How long a worker that failed to load its model waits for Redis to say so before exiting anyway. */
const REPORT_TIMEOUT_MS = 3_000;

/**
 * Counts a failed model load in Redis, best effort. The worker exits right
 * after, so no scrape of its own /metrics would ever see the failure; the
 * gateway exports the count as fastvlm_model_load_failures_total.
 */
export async function reportLoadFailure(target: RedisTarget, prefix: string, model: string): Promise<void> {
  const redis = createRedis(target, 'producer', 'worker-load-failure', () => undefined);
  try {
    await waitReady(redis, REPORT_TIMEOUT_MS);
    await new WorkerRegistry(redis, new RedisKeys(prefix)).recordLoadFailure(model);
  } catch {
    // Redis is away too: the exit code and the log line are all that is left.
  } finally {
    redis.disconnect();
  }
}
