import type { Redis } from 'ioredis';
import { AppError, type RedisKeys } from '@fastvlm/contracts';
import { sha256Hex } from './image-store';

/**
 * `Idempotency-Key` records: the same key and body within the TTL return the
 * same job; the same key with another body is a conflict.
 */
export class IdempotencyKeys {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  /**
   * Claims `key` for `jobId`. Returns the job id to answer with: `jobId` when
   * this call claimed the key, or the job an earlier identical request created.
   */
  async claim(tenant: string, key: string, bodyHash: string, jobId: string): Promise<{ jobId: string; replay: boolean }> {
    if (key.length === 0 || key.length > 255) {
      throw new AppError('invalid_request', 'Idempotency-Key must be 1 to 255 characters.', 'Idempotency-Key');
    }
    const redisKey = this.keys.idempotency(tenant, sha256Hex(key));
    const record = JSON.stringify({ bodyHash, jobId });
    const set = await this.redis.set(redisKey, record, 'EX', this.ttlSeconds, 'NX');
    if (set === 'OK') return { jobId, replay: false };
    const existing = await this.redis.get(redisKey);
    if (existing === null) return this.claim(tenant, key, bodyHash, jobId);
    const parsed = JSON.parse(existing) as { bodyHash: string; jobId: string };
    if (parsed.bodyHash !== bodyHash) {
      throw new AppError(
        'idempotency_conflict',
        'This Idempotency-Key was already used with a different request body.',
        'Idempotency-Key',
      );
    }
    return { jobId: parsed.jobId, replay: true };
  }

  /** Frees a claim whose job could not be created, so that a retry with the same key can succeed. */
  async release(tenant: string, key: string): Promise<void> {
    await this.redis.del(this.keys.idempotency(tenant, sha256Hex(key)));
  }
}
