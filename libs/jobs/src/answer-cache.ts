import type { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { InferenceResultSchema, type InferenceResult, type RedisKeys } from '@fastvlm/contracts';
import { boundedCacheCall, DEFAULT_CACHE_TIMEOUT_MS, type CacheErrorSink } from './cache-bound';

export { CacheTimeout, DEFAULT_CACHE_TIMEOUT_MS, type CacheErrorSink, type CacheOp } from './cache-bound';

export type CacheLevel = 'l1' | 'l2';

export interface AnswerCacheOptions {
  /** Bytes the in-process cache may hold (JSON size of the answers); 0 disables L1. */
  l1MaxBytes: number;
  /** Seconds an answer lives in Redis. */
  l2TtlSeconds: number;
  /** Milliseconds an L2 read or write may take before it counts as a miss (or a dropped write). Default 100. */
  timeoutMs?: number | undefined;
  /** Told of every L2 error and timeout (the `fastvlm_cache_errors_total` counter). */
  onError?: CacheErrorSink | undefined;
}

/**
 * Answers of deterministic requests. L1 is this process's LRU, bounded in
 * bytes; L2 is the cache Redis with a TTL, shared by every gateway and filled
 * by the workers. Only successful answers are ever stored.
 *
 * The cache is optional: the cache Redis may evict, restart or be away, so an
 * L2 error or a slow answer is a miss, and a write that fails is dropped.
 * Neither method ever rejects, and neither waits longer than `timeoutMs`.
 */
export class AnswerCache {
  private readonly l1: LRUCache<string, InferenceResult>;
  private readonly timeoutMs: number;

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly opts: AnswerCacheOptions,
  ) {
    this.l1 = new LRUCache<string, InferenceResult>({
      maxSize: Math.max(1, opts.l1MaxBytes),
      sizeCalculation: (v, k) => k.length + JSON.stringify(v).length,
    });
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_CACHE_TIMEOUT_MS;
  }

  async get(key: string): Promise<{ result: InferenceResult; level: CacheLevel } | null> {
    if (this.opts.l1MaxBytes > 0) {
      const hit = this.l1.get(key);
      if (hit) return { result: hit, level: 'l1' };
    }
    const raw = await boundedCacheCall('get', () => this.redis.get(this.keys.answer(key)), null, this.timeoutMs, this.opts.onError);
    if (raw === null) return null;
    const result = parseEntry(raw);
    if (!result) return null;
    this.remember(key, result);
    return { result, level: 'l2' };
  }

  /** Keeps an answer in this process only (the worker already wrote L2). */
  remember(key: string, result: InferenceResult): void {
    if (this.opts.l1MaxBytes > 0 && result.finishReason !== 'cancelled') this.l1.set(key, result);
  }

  /** Writes L2 (workers call this once per computed answer). Settles within the timeout, stored or not. */
  async store(key: string, result: InferenceResult): Promise<void> {
    if (result.finishReason === 'cancelled') return;
    const body = JSON.stringify(result);
    await boundedCacheCall('set', () => this.redis.set(this.keys.answer(key), body, 'EX', this.opts.l2TtlSeconds), null, this.timeoutMs, this.opts.onError);
  }
}

/** An entry written by an incompatible version, or corrupted, is a miss, not an error. */
function parseEntry(raw: string): InferenceResult | null {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    return null;
  }
  const parsed = InferenceResultSchema.safeParse(json);
  return parsed.success ? parsed.data : null;
}
