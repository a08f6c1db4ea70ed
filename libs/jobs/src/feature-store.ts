import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';

/**
 * Image features in the cache Redis, shared by every worker: a question about
 * an image another worker has seen skips the vision encoder. Structurally the
 * pipeline's `FeatureStore`.
 */
export class RedisFeatureStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
  ) {}

  get(key: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.features(key));
  }

  async set(key: string, value: Buffer, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.keys.features(key), value, 'EX', ttlSeconds);
  }
}
