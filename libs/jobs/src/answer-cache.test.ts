import { Redis } from 'ioredis';
import fc from 'fast-check';
import { freeTcpPort } from './test-ports';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type DecodingParams, type InferenceResult } from '@fastvlm/contracts';
import { AnswerCache } from './answer-cache';
import { answerCacheKey, type CacheKeyInput } from './cache-key';
import { createRedis } from './redis';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';

const params: DecodingParams = { maxTokens: 16, temperature: 0, topP: 1, stop: [] };
const base: CacheKeyInput = { tenant: 'acme', modelId: 'm', modelRevision: 'r', params, imageSha256: 'a'.repeat(64), question: 'q' };
const result: InferenceResult = { text: 'hi', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 1 }, model: 'm', finishedAt: 1, timings: { queueMs: 0, inferenceMs: 1 } };

describe('answerCacheKey', () => {
  it('changes when any of tenant, model, revision, parameters, image or question changes', () => {
    const k = answerCacheKey(base);
    const variants: CacheKeyInput[] = [
      { ...base, tenant: 'globex' },
      { ...base, modelId: 'm2' },
      { ...base, modelRevision: 'r2' },
      { ...base, params: { ...params, maxTokens: 17 } },
      { ...base, params: { ...params, temperature: 0.5, seed: 1 } },
      { ...base, params: { ...params, stop: ['x'] } },
      { ...base, imageSha256: 'b'.repeat(64) },
      { ...base, question: 'q2' },
    ];
    for (const v of variants) expect(answerCacheKey(v)).not.toBe(k);
    expect(answerCacheKey({ ...base })).toBe(k);
  });

  it('cannot be confused by moving characters between adjacent fields', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.string(), fc.string(), (t1, q1, t2, q2) => {
        fc.pre(t1 !== t2 || q1 !== q2);
        expect(answerCacheKey({ ...base, tenant: t1, question: q1 })).not.toBe(answerCacheKey({ ...base, tenant: t2, question: q2 }));
      }),
    );
    expect(answerCacheKey({ ...base, tenant: 'ab', modelId: 'c' })).not.toBe(answerCacheKey({ ...base, tenant: 'a', modelId: 'bc' }));
  });
});

describe('AnswerCache', () => {
  const prefix = testPrefix();
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('finds an answer stored by another process in L2, then serves it from L1', async () => {
    const writer = new AnswerCache(redis, new RedisKeys(prefix), { l1MaxBytes: 0, l2TtlSeconds: 60 });
    const reader = new AnswerCache(redis, new RedisKeys(prefix), { l1MaxBytes: 1 << 20, l2TtlSeconds: 60 });
    expect(await reader.get('k1')).toBeNull();
    await writer.store('k1', result);
    expect(await reader.get('k1')).toEqual({ result, level: 'l2' });
    await redis.del(new RedisKeys(prefix).answer('k1'));
    expect(await reader.get('k1')).toEqual({ result, level: 'l1' });
    expect(await redis.ttl(new RedisKeys(prefix).answer('k1'))).toBe(-2);
  });

  it('never stores cancelled answers, and treats unreadable entries as misses', async () => {
    const cache = new AnswerCache(redis, new RedisKeys(prefix), { l1MaxBytes: 1 << 20, l2TtlSeconds: 60 });
    await cache.store('k2', { ...result, finishReason: 'cancelled' });
    expect(await cache.get('k2')).toBeNull();
    await redis.set(new RedisKeys(prefix).answer('k3'), JSON.stringify({ old: 'format' }));
    expect(await cache.get('k3')).toBeNull();
  });

  it('keeps L1 within its byte budget', async () => {
    const cache = new AnswerCache(redis, new RedisKeys(prefix), { l1MaxBytes: 2000, l2TtlSeconds: 60 });
    for (let i = 0; i < 50; i++) cache.remember(`big${i}`, { ...result, text: 'x'.repeat(500) });
    let held = 0;
    for (let i = 0; i < 50; i++) if ((await cache.get(`big${i}`))?.level === 'l1') held++;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(3);
  });
});

describe('AnswerCache when the cache Redis is away', () => {
  const keys = new RedisKeys(testPrefix());
  const conns: Redis[] = [];
  afterAll(() => {
    for (const c of conns) c.disconnect();
  });

  /** A real connection to a port nothing listens on: `producer` fails each command at once, `consumer` queues it forever. */
  async function deadCache(role: 'producer' | 'consumer', timeoutMs = 100) {
    const errors: [string, string][] = [];
    const redis = createRedis(`redis://127.0.0.1:${await freeTcpPort()}`, role, 'dead-cache', () => undefined);
    conns.push(redis);
    const cache = new AnswerCache(redis, keys, { l1MaxBytes: 1 << 20, l2TtlSeconds: 60, timeoutMs, onError: (op, err) => errors.push([op, err instanceof Error ? err.name : String(err)]) });
    return { cache, errors };
  }

  it('reads a lookup that errors as a miss and settles a write that errors, reporting each', async () => {
    const { cache, errors } = await deadCache('producer');
    expect(await cache.get('k')).toBeNull();
    await expect(cache.store('k', result)).resolves.toBeUndefined();
    expect(errors.map(([op]) => op)).toEqual(['get', 'set']);
  });

  it('bounds a lookup and a write that Redis never answers by the timeout: a miss and a dropped write', async () => {
    const { cache, errors } = await deadCache('consumer', 50);
    expect(await cache.get('k')).toBeNull();
    await expect(cache.store('k', result)).resolves.toBeUndefined();
    expect(errors).toEqual([
      ['get', 'CacheTimeout'],
      ['set', 'CacheTimeout'],
    ]);
  });

  it('still serves answers this process remembered while L2 is away', async () => {
    const { cache, errors } = await deadCache('producer');
    cache.remember('seen', result);
    expect(await cache.get('seen')).toEqual({ result, level: 'l1' });
    expect(errors).toEqual([]);
  });

  it('treats an entry that is not JSON as a miss', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    conns.push(redis);
    const errors: string[] = [];
    const cache = new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60, onError: (op) => errors.push(op) });
    await redis.set(keys.answer('garbage'), '{not json', 'EX', 60);
    expect(await cache.get('garbage')).toBeNull();
    expect(errors).toEqual([]);
    await redis.del(keys.answer('garbage'));
  });
});
