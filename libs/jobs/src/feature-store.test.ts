import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { RedisFeatureStore } from './feature-store';
import { createRedis } from './redis';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';
import { freeTcpPort } from './test-ports';

describe('RedisFeatureStore', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  const conns: Redis[] = [];
  afterAll(async () => {
    const live = new Redis(TEST_REDIS_URL);
    await cleanupPrefix(live, prefix);
    live.disconnect();
    for (const c of conns) c.disconnect();
  });

  async function dead(role: 'producer' | 'consumer') {
    const redis = createRedis(`redis://127.0.0.1:${await freeTcpPort()}`, role, 'dead-features', () => undefined);
    conns.push(redis);
    const errors: [string, string][] = [];
    const store = new RedisFeatureStore(redis, keys, { timeoutMs: 50, onError: (op, err) => errors.push([op, err instanceof Error ? err.name : String(err)]) });
    return { store, errors };
  }

  it('stores features for another worker to read back, byte for byte', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    conns.push(redis);
    const store = new RedisFeatureStore(redis, keys);
    const bytes = Buffer.from(new Float32Array([1.5, -2, 3.25]).buffer);
    expect(await store.get('img')).toBeNull();
    await store.set('img', bytes, 60);
    expect(await store.get('img')).toEqual(bytes);
    expect(await redis.ttl(keys.features('img'))).toBeGreaterThan(0);
  });

  it('reads a lookup that errors as a miss and settles a write that errors, reporting each', async () => {
    const { store, errors } = await dead('producer');
    expect(await store.get('img')).toBeNull();
    await expect(store.set('img', Buffer.alloc(4), 60)).resolves.toBeUndefined();
    expect(errors.map(([op]) => op)).toEqual(['get', 'set']);
  });

  it('bounds a lookup and a write that Redis never answers by the timeout', async () => {
    const { store, errors } = await dead('consumer');
    expect(await store.get('img')).toBeNull();
    await expect(store.set('img', Buffer.alloc(4), 60)).resolves.toBeUndefined();
    expect(errors).toEqual([
      ['get', 'CacheTimeout'],
      ['set', 'CacheTimeout'],
    ]);
  });
});
