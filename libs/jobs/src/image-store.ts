import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { RedisKeys } from '@fastvlm/contracts';

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Validated image bytes, stored once under their SHA-256 so that jobs carry a
 * reference instead of megabytes of payload, and repeated images are stored once.
 */
export class ImageStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    /** Seconds an image is kept after its last use; must outlast the longest queue wait. */
    private readonly ttlSeconds: number,
  ) {}

  /** Where an image is kept and for how long after its last use: a job's dependency (JobStore.createWith). */
  slot(sha256: string): { key: string; ttlSeconds: number } {
    return { key: this.keys.image(sha256), ttlSeconds: this.ttlSeconds };
  }

  /** Stores the bytes under their hash (replacing an identical copy). */
  async write(bytes: Uint8Array, sha = sha256Hex(bytes)): Promise<void> {
    await this.redis.set(this.keys.image(sha), Buffer.from(bytes), 'EX', this.ttlSeconds);
  }

  /** Stores the bytes (or refreshes the TTL of an identical copy) under their hash. */
  async put(bytes: Uint8Array, sha = sha256Hex(bytes)): Promise<string> {
    const key = this.keys.image(sha);
    // Most repeats are the same image asked about again: refresh instead of re-sending megabytes.
    const refreshed = await this.redis.expire(key, this.ttlSeconds);
    if (refreshed === 0) await this.redis.set(key, Buffer.from(bytes), 'EX', this.ttlSeconds);
    return sha;
  }

  async get(sha256: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.image(sha256));
  }
}
