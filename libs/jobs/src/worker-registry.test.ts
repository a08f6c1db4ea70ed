import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { TEST_REDIS_URL, cleanupPrefix, testPrefix } from './test-redis';
import { WorkerRegistry, type WorkerInfo } from './worker-registry';

const info = (id: string): WorkerInfo => ({ id, model: 'tiny-random', revision: 'r1', dtype: 'fp32', device: 'cpu', pid: 1, startedAt: 1, queue: poolQueue('tiny-random') });

describe('worker registry', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(() => {
    redis?.disconnect();
  });

  const fresh = (): { keys: RedisKeys; prefix: string } => {
    const prefix = testPrefix();
    return { keys: new RedisKeys(prefix), prefix };
  };

  it('lists each worker with the pool queue it announced, and a hash without one on its model\'s pool', async () => {
    const { keys, prefix } = fresh();
    try {
      const now = Date.now();
      const registry = new WorkerRegistry(redis, keys);
      await registry.announce({ ...info('w-other'), model: 'tiny-random@other', queue: poolQueue('tiny-random@other') }, now);
      await registry.announce(info('w-bare'), now - 1);
      await redis.hdel(keys.worker('w-bare'), 'queue');
      expect((await registry.alive(now)).map((w) => [w.id, w.model, w.queue])).toEqual([
        ['w-other', 'tiny-random@other', 'inference-tiny-random~40other'],
        ['w-bare', 'tiny-random', 'inference-tiny-random'],
      ]);
    } finally {
      await cleanupPrefix(redis, prefix);
    }
  });

  it("a live worker's heartbeat removes a worker that stopped heartbeating four stale periods ago, its set member and its hash", async () => {
    const { keys, prefix } = fresh();
    try {
      const now = Date.now();
      const registry = new WorkerRegistry(redis, keys);
      await new WorkerRegistry(redis, keys).announce(info('w-dead'), now - 61_000);
      await new WorkerRegistry(redis, keys).announce(info('w-late'), now - 59_000);
      await registry.announce(info('w-live'), now);
      await registry.heartbeat('w-live', now);
      expect(await redis.zrange(keys.workers(), '0', '-1')).toEqual(['w-late', 'w-live']);
      expect(await redis.exists(keys.worker('w-dead'))).toBe(0);
      expect(await redis.exists(keys.worker('w-late'))).toBe(1);
      expect((await registry.alive(now)).map((w) => w.id)).toEqual(['w-live']);
    } finally {
      await cleanupPrefix(redis, prefix);
    }
  });

  it('one prune removes at most its limit, oldest first, and the next ones take the rest', async () => {
    const { keys, prefix } = fresh();
    try {
      const now = Date.now();
      const stale = Array.from({ length: 250 }, (_, i) => [now - 100_000 - i, `w-${String(i).padStart(3, '0')}`] as const);
      await redis.zadd(keys.workers(), ...stale.flat());
      const registry = new WorkerRegistry(redis, keys);
      expect(await registry.prune(now, 100)).toBe(100);
      expect(await redis.zcard(keys.workers())).toBe(150);
      // The oldest went first (the highest indexes were written with the oldest scores).
      expect(await redis.zscore(keys.workers(), 'w-249')).toBeNull();
      expect(await redis.zscore(keys.workers(), 'w-000')).not.toBeNull();
      expect(await registry.prune(now, 100)).toBe(100);
      expect(await registry.prune(now, 100)).toBe(50);
      expect(await registry.prune(now, 100)).toBe(0);
      expect(await redis.exists(keys.workers())).toBe(0);
    } finally {
      await cleanupPrefix(redis, prefix);
    }
  });

  it('a worker whose hash was pruned or expired while it was paused announces itself again at its next heartbeat', async () => {
    const { keys, prefix } = fresh();
    try {
      const now = Date.now();
      const registry = new WorkerRegistry(redis, keys);
      await registry.announce(info('w-paused'), now);
      await redis.del(keys.worker('w-paused'));
      await registry.heartbeat('w-paused', now + 1_000);
      expect(await registry.alive(now + 1_000)).toEqual([info('w-paused')]);
      expect(await redis.pttl(keys.worker('w-paused'))).toBeGreaterThan(0);
    } finally {
      await cleanupPrefix(redis, prefix);
    }
  });
});
