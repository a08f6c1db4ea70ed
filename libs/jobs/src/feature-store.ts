import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';
import { boundedCacheCall, DEFAULT_CACHE_TIMEOUT_MS, type CacheErrorSink } from './cache-bound';

export interface FeatureStoreOptions {
  /** Milliseconds a read or write may take before it counts as a miss (or a dropped write). Default 100. */
  timeoutMs?: number | undefined;
  /** Told of every error and timeout (the `fastvlm_cache_errors_total{level="vision"}` counter). */
  onError?: CacheErrorSink | undefined;
}

/**
 * Image features in the cache Redis, shared by every worker: a question about
 * an image another worker has seen skips the vision encoder. Structurally the
 * pipeline's `FeatureStore`. An optimisation only: a lookup that fails or is
 * slow is a miss, a write that fails is dropped, and neither ever rejects.
 */
export class RedisFeatureStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly opts: FeatureStoreOptions = {},
  ) {}

  get(key: string): Promise<Buffer | null> {
    return boundedCacheCall('get', () => this.redis.getBuffer(this.keys.features(key)), null, this.timeout(), this.opts.onError);
  }

  async set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    await boundedCacheCall('set', () => this.redis.set(this.keys.features(key), value, 'EX', ttlSeconds), null, this.timeout(), this.opts.onError);
  }

  private timeout(): number {
    return this.opts.timeoutMs ?? DEFAULT_CACHE_TIMEOUT_MS;
  }
}
