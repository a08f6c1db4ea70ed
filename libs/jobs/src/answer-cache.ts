import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { InferenceResultSchema, type InferenceResult, type RedisKeys } from '@fastvlm/contracts';

export type CacheLevel = 'l1' | 'l2';

/**
 * Answers of deterministic requests. L1 is this process's LRU, bounded in
 * bytes; L2 is the cache Redis with a TTL, shared by every gateway and filled
 * by the workers. Only successful answers are ever stored.
 */
export class AnswerCache {
  private readonly l1: LRUCache<string, InferenceResult>;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly opts: {
      /** Bytes the in-process cache may hold (JSON size of the answers); 0 disables L1. */
      l1MaxBytes: number;
      /** Seconds an answer lives in Redis. */
      l2TtlSeconds: number;
    },
  ) {
    this.l1 = new LRUCache<string, InferenceResult>({
      maxSize: Math.max(1, opts.l1MaxBytes),
      sizeCalculation: (v, k) => k.length + JSON.stringify(v).length,
    });
  }

  async get(key: string): Promise<{ result: InferenceResult; level: CacheLevel } | null> {
    if (this.opts.l1MaxBytes > 0) {
      const hit = this.l1.get(key);
      if (hit) return { result: hit, level: 'l1' };
    }
    const raw = await this.redis.get(this.keys.answer(key));
    if (raw === null) return null;
    const parsed = InferenceResultSchema.safeParse(JSON.parse(raw));
    // An entry written by an incompatible version is a miss, not an error.
    if (!parsed.success) return null;
    this.remember(key, parsed.data);
    return { result: parsed.data, level: 'l2' };
  }

  /** Keeps an answer in this process only (the worker already wrote L2). */
  remember(key: string, result: InferenceResult): void {
    if (this.opts.l1MaxBytes > 0 && result.finishReason !== 'cancelled') this.l1.set(key, result);
  }

  /** Writes L2 (workers call this once per computed answer). */
  async store(key: string, result: InferenceResult): Promise<void> {
    if (result.finishReason === 'cancelled') return;
    await this.redis.set(this.keys.answer(key), JSON.stringify(result), 'EX', this.opts.l2TtlSeconds);
  }
}
