import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedis } from '@fastvlm/jobs';
import { ArrivalCounter } from './arrival-counter';
import { cleanup, deadRedisUrl, down, freshKeys, producer, until } from './test-redis';

const QUEUE = 'inference';

describe('ArrivalCounter on real Redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await producer();
  });
  afterAll(() => redis?.disconnect());

  it('writes exactly what was counted, once per flush, and sends nothing while nothing arrived', async () => {
    const keys = freshKeys();
    const key = keys.autoscale(QUEUE, 'arrivals');
    try {
      const counter = new ArrivalCounter(redis, keys, QUEUE);
      const incrby = vi.spyOn(redis, 'incrby');
      counter.add();
      counter.add();
      counter.add(3);
      expect(await counter.flush()).toBe(5);
      expect(await redis.get(key)).toBe('5');
      expect(await counter.flush()).toBe(0);
      expect(await counter.flush()).toBe(0);
      expect(incrby).toHaveBeenCalledTimes(1);
      counter.add();
      expect(await counter.flush()).toBe(1);
      expect(await redis.get(key)).toBe('6');
      expect(incrby).toHaveBeenCalledTimes(2);
      incrby.mockRestore();
    } finally {
      await cleanup(redis, keys);
    }
  });

  it('never takes one count twice when flushes are asked for together', async () => {
    const keys = freshKeys();
    try {
      const counter = new ArrivalCounter(redis, keys, QUEUE);
      counter.add(7);
      const written = await Promise.all([counter.flush(), counter.flush(), counter.flush()]);
      expect(written.sort()).toEqual([0, 0, 7]);
      expect(await redis.get(keys.autoscale(QUEUE, 'arrivals'))).toBe('7');
    } finally {
      await cleanup(redis, keys);
    }
  });

  it('keeps the count while its connection is down and adds all of it at the next flush Redis takes', async () => {
    const keys = freshKeys();
    const own = await producer();
    try {
      const counter = new ArrivalCounter(own, keys, QUEUE);
      counter.add(2);
      await down(own);
      counter.add(2);
      expect(await counter.flush()).toBe(0);
      expect(counter.unflushed).toBe(4);
      await own.connect();
      counter.add();
      expect(await counter.flush()).toBe(5);
      expect(counter.unflushed).toBe(0);
      expect(await redis.get(keys.autoscale(QUEUE, 'arrivals'))).toBe('5');
    } finally {
      own.disconnect();
      await cleanup(redis, keys);
    }
  });

  it('counts on without error when no Redis ever answered', async () => {
    const dead = createRedis(await deadRedisUrl(), 'producer', 'signals-test-dead', () => undefined);
    try {
      const counter = new ArrivalCounter(dead, freshKeys(), QUEUE);
      counter.add(3);
      expect(await counter.flush()).toBe(0);
      await counter.close(100);
      expect(counter.unflushed).toBe(3);
    } finally {
      dead.disconnect();
    }
  });

  it('drops a write whose reply failed instead of sending it again (at-most-once), and says how many', async () => {
    const keys = freshKeys();
    const key = keys.autoscale(QUEUE, 'arrivals');
    try {
      const lost: number[] = [];
      const counter = new ArrivalCounter(redis, keys, QUEUE, { onLost: (n) => lost.push(n) });
      // A key of the wrong type makes Redis answer INCRBY with an error.
      await redis.hset(key, 'x', '1');
      counter.add(4);
      expect(await counter.flush()).toBe(0);
      expect(lost).toEqual([4]);
      expect(counter.unflushed).toBe(0);
      await redis.del(key);
      counter.add();
      expect(await counter.flush()).toBe(1);
      expect(await redis.get(key)).toBe('1');
    } finally {
      await cleanup(redis, keys);
    }
  });

  it('flushes by itself every flushMs, and what is left when it closes', async () => {
    const keys = freshKeys();
    const key = keys.autoscale(QUEUE, 'arrivals');
    try {
      const counter = new ArrivalCounter(redis, keys, QUEUE, { flushMs: 20 });
      counter.start();
      counter.add(2);
      await until('the periodic flush', async () => (await redis.get(key)) === '2');
      counter.add(3);
      await counter.close();
      expect(await redis.get(key)).toBe('5');
      expect(counter.unflushed).toBe(0);
    } finally {
      await cleanup(redis, keys);
    }
  });
});
