import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisKeys } from '@fastvlm/contracts';
import { LOADING_STALE_MS } from './layout';
import { SignalReader } from './signal-reader';
import { TEST_REDIS_URL, cleanup, freshKeys, producer, until } from './test-redis';

describe('signal reader (real Redis and BullMQ)', () => {
  let redis: Redis;
  let keys: RedisKeys;
  const closers: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = await producer();
    keys = freshKeys();
  });
  afterAll(async () => {
    for (const close of closers.reverse()) await close();
    await cleanup(redis, keys);
    redis.disconnect();
  });

  const queueOf = (name: string): Queue => {
    const q = new Queue(name, { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    closers.push(() => q.close());
    return q;
  };

  it('counts waiting, prioritized and due delayed jobs as queued and running ones as active, from BullMQ itself', async () => {
    const q = queueOf('backlog');
    // Three jobs a worker holds (it finishes them when the test ends).
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    await q.addBulk([1, 2, 3].map((i) => ({ name: 'chat', data: { i } })));
    const worker = new Worker('backlog', () => held, { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull(), concurrency: 3 });
    closers.push(async () => {
      release();
      await worker.close();
    });
    await until('the worker to hold three jobs', async () => (await q.getActiveCount()) === 3);
    // With every slot busy the worker fetches nothing more: what is added now stays where BullMQ puts it.
    await q.addBulk([
      ...[1, 2, 3, 4].map((i) => ({ name: 'chat', data: { i } })),
      ...[1, 2].map((i) => ({ name: 'chat', data: { i }, opts: { priority: 1 + i } })),
      ...[1, 2, 3, 4, 5].map((i) => ({ name: 'chat', data: { i }, opts: { delay: 1 } })),
      { name: 'chat', data: {}, opts: { delay: 3_600_000 } },
    ]);
    const reader = new SignalReader(redis, keys, () => Promise.resolve(0));
    expect(await q.getPrioritizedCount()).toBe(2);
    expect(await q.getDelayedCount()).toBe(6);
    // A second on, the 1 ms delays are due and the hour's is not.
    const { sample } = await reader.read('backlog', Date.now() + 1_000);
    expect(sample.queued).toBe(4 + 2 + 5);
    expect(sample.active).toBe(3);
    // A delayed job is queued from its due time on, not before.
    expect((await reader.read('backlog', Date.now() + 3_600_000 + 1_000)).sample.queued).toBe(4 + 2 + 6);
  });

  it('reads the published counters, the work totals, the start-up list and the ready count for its queue', async () => {
    const k = (part: Parameters<RedisKeys['autoscale']>[1]) => keys.autoscale('signals', part);
    await redis
      .multi()
      .set(k('arrivals'), 42)
      .set(k('completions'), 40)
      .hset(k('work'), { busyMs: 9_000, busyDone: 30, satMs: 4_000, satDone: 12 })
      .lpush(k('startup'), '31.5', '12')
      .exec();
    const asked: string[] = [];
    const reader = new SignalReader(redis, keys, (queue) => {
      asked.push(queue);
      return Promise.resolve(2);
    });
    const now = 1_800_000_000_000;
    const { sample, startupSeconds } = await reader.read('signals', now);
    expect(asked).toEqual(['signals']);
    expect(sample).toEqual({ t: 1_800_000_000, arrivals: 42, completions: 40, queued: 0, active: 0, ready: 2, loading: 0, busyMs: 9_000, busyDone: 30, satMs: 4_000, satDone: 12 });
    expect(startupSeconds).toEqual([12, 31.5]);
    const untouched = await reader.read('never-used', now);
    expect(untouched.sample).toMatchObject({ arrivals: 0, completions: 0, queued: 0, busyMs: 0 });
  });

  it('counts loading workers that renewed their entry recently and prunes those that crashed while loading', async () => {
    const now = 1_800_000_000_000;
    const key = keys.autoscale('loading', 'loading');
    await redis.zadd(key, now - 1_000, 'w-fresh', now - LOADING_STALE_MS, 'w-edge', now - LOADING_STALE_MS - 1, 'w-crashed');
    const reader = new SignalReader(redis, keys, () => Promise.resolve(0));
    expect((await reader.read('loading', now)).sample.loading).toBe(2);
    expect(await redis.zrange(key, '0', '-1')).toEqual(['w-edge', 'w-fresh']);
  });
});
