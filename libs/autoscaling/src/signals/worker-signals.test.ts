import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createRedis } from '@fastvlm/jobs';
import { STARTUP_KEEP } from './layout';
import { cleanup, deadRedisUrl, down, freshKeys, producer, TEST_REDIS_URL, until } from './test-redis';
import { WorkMeter } from './work-meter';
import { StartupSignals, WorkPublisher } from './worker-signals';

const QUEUE = 'inference';

describe('worker signals on real Redis', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await producer();
  });
  afterAll(() => redis?.disconnect());

  describe('WorkPublisher', () => {
    it('adds the meter to `completions` and the `work` hash in one transaction, and writes nothing when nothing changed', async () => {
      const keys = freshKeys();
      let t = 0;
      const meter = new WorkMeter(2, () => t);
      const publisher = new WorkPublisher(redis, keys, QUEUE, meter);
      const multi = vi.spyOn(redis, 'multi');
      try {
        meter.started();
        t = 100;
        meter.started();
        t = 300;
        meter.ended();
        t = 400;
        meter.ended();
        expect(await publisher.flush()).toEqual({ completions: 2, busyMs: 400, busyDone: 2, satMs: 200, satDone: 1 });
        expect(await redis.get(keys.autoscale(QUEUE, 'completions'))).toBe('2');
        expect(await redis.hgetall(keys.autoscale(QUEUE, 'work'))).toEqual({ busyMs: '400', busyDone: '2', satMs: '200', satDone: '1' });
        expect(multi).toHaveBeenCalledTimes(1);

        t = 5_000;
        expect(await publisher.flush()).toBeNull();
        expect(multi).toHaveBeenCalledTimes(1);

        // A job still running adds its busy time at each flush; the totals only grow.
        meter.started();
        t = 5_250;
        await publisher.flush();
        expect(await redis.hgetall(keys.autoscale(QUEUE, 'work'))).toEqual({ busyMs: '650', busyDone: '2', satMs: '200', satDone: '1' });
        expect(await redis.get(keys.autoscale(QUEUE, 'completions'))).toBe('2');
      } finally {
        multi.mockRestore();
        await cleanup(redis, keys);
      }
    });

    it('keeps the totals while its connection is down and writes them with the next flush', async () => {
      const keys = freshKeys();
      const own = await producer();
      let t = 0;
      const meter = new WorkMeter(1, () => t);
      const publisher = new WorkPublisher(own, keys, QUEUE, meter);
      try {
        meter.started();
        t = 70;
        meter.ended();
        await down(own);
        expect(await publisher.flush()).toBeNull();
        await own.connect();
        meter.started();
        t = 100;
        meter.ended();
        expect(await publisher.flush()).toEqual({ completions: 2, busyMs: 100, busyDone: 2, satMs: 100, satDone: 2 });
        expect(await redis.get(keys.autoscale(QUEUE, 'completions'))).toBe('2');
      } finally {
        own.disconnect();
        await cleanup(redis, keys);
      }
    });

    it('flushes by itself, and what is left when it closes', async () => {
      const keys = freshKeys();
      let t = 0;
      const meter = new WorkMeter(1, () => t);
      const publisher = new WorkPublisher(redis, keys, QUEUE, meter, { flushMs: 20 });
      try {
        publisher.start();
        meter.started();
        t = 10;
        meter.ended();
        await until('the periodic flush', async () => (await redis.get(keys.autoscale(QUEUE, 'completions'))) === '1');
        meter.started();
        t = 30;
        meter.ended();
        await publisher.close();
        expect(await redis.get(keys.autoscale(QUEUE, 'completions'))).toBe('2');
        expect(await redis.hget(keys.autoscale(QUEUE, 'work'), 'busyMs')).toBe('30');
      } finally {
        await cleanup(redis, keys);
      }
    });
  });

  describe('StartupSignals', () => {
    it('adds the worker to `loading` with the time, renews it, and on ready removes it and records its start-up seconds', async () => {
      const keys = freshKeys();
      const loading = keys.autoscale(QUEUE, 'loading');
      let now = 1_700_000_000_000;
      const signals = new StartupSignals(redis, keys, QUEUE, 'w-1', { now: () => now });
      try {
        signals.startLoading();
        await until('the loading entry', async () => (await redis.zscore(loading, 'w-1')) === String(now));
        now += 5_000;
        await signals.beat();
        expect(await redis.zscore(loading, 'w-1')).toBe(String(now));
        await signals.ready(12.5);
        expect(await redis.zscore(loading, 'w-1')).toBeNull();
        expect(await redis.lrange(keys.autoscale(QUEUE, 'startup'), 0, -1)).toEqual(['12.5']);
        // The heartbeat stopped with readiness: a renewal no longer writes.
        await signals.beat();
        expect(await redis.zscore(loading, 'w-1')).toBeNull();
      } finally {
        await cleanup(redis, keys);
      }
    });

    it('renews the entry on its own every heartbeatMs', async () => {
      const keys = freshKeys();
      let now = 1_000;
      const signals = new StartupSignals(redis, keys, QUEUE, 'w-beat', { now: () => (now += 1), heartbeatMs: 20 });
      try {
        signals.startLoading();
        await until('two renewals', async () => Number(await redis.zscore(keys.autoscale(QUEUE, 'loading'), 'w-beat')) >= 1_002);
        await signals.withdraw();
      } finally {
        await cleanup(redis, keys);
      }
    });

    it('writes the loading entry once a connection that was not ready yet becomes ready', async () => {
      const keys = freshKeys();
      const fresh = createRedis(TEST_REDIS_URL, 'producer', 'signals-test-fresh', () => undefined);
      try {
        const signals = new StartupSignals(fresh, keys, QUEUE, 'w-early', { now: () => 42 });
        expect(fresh.status).not.toBe('ready');
        signals.startLoading();
        await until('the loading entry', async () => (await redis.zscore(keys.autoscale(QUEUE, 'loading'), 'w-early')) === '42');
        await signals.withdraw();
        expect(await redis.zcard(keys.autoscale(QUEUE, 'loading'))).toBe(0);
      } finally {
        fresh.disconnect();
        await cleanup(redis, keys);
      }
    });

    it('keeps the newest STARTUP_KEEP start-up times, newest first', async () => {
      const keys = freshKeys();
      try {
        for (let i = 1; i <= STARTUP_KEEP + 5; i++) await new StartupSignals(redis, keys, QUEUE, `w-${i}`).ready(i);
        const kept = await redis.lrange(keys.autoscale(QUEUE, 'startup'), 0, -1);
        expect(kept).toHaveLength(STARTUP_KEEP);
        expect(kept[0]).toBe(String(STARTUP_KEEP + 5));
        expect(kept.at(-1)).toBe('6');
      } finally {
        await cleanup(redis, keys);
      }
    });

    it('removes the entry when the worker gives up loading', async () => {
      const keys = freshKeys();
      const signals = new StartupSignals(redis, keys, QUEUE, 'w-failed');
      try {
        signals.startLoading();
        await until('the loading entry', async () => (await redis.zscore(keys.autoscale(QUEUE, 'loading'), 'w-failed')) !== null);
        await signals.withdraw();
        expect(await redis.zscore(keys.autoscale(QUEUE, 'loading'), 'w-failed')).toBeNull();
        expect(await redis.exists(keys.autoscale(QUEUE, 'startup'))).toBe(0);
      } finally {
        await cleanup(redis, keys);
      }
    });

    it('never fails nor waits when no Redis answers', async () => {
      const dead = createRedis(await deadRedisUrl(), 'producer', 'signals-test-dead', () => undefined);
      const errors: unknown[] = [];
      try {
        const signals = new StartupSignals(dead, freshKeys(), QUEUE, 'w-alone', { onError: (e) => errors.push(e) });
        signals.startLoading();
        await signals.beat();
        await signals.ready(3);
        await signals.withdraw();
        // Refused before sending: the connection's own handler reports the outage, the signals stay quiet.
        expect(errors).toEqual([]);
      } finally {
        dead.disconnect();
      }
    });

    it('reports the first failed write of an outage once, and again only after one succeeded', async () => {
      const keys = freshKeys();
      const loading = keys.autoscale(QUEUE, 'loading');
      const errors: unknown[] = [];
      const signals = new StartupSignals(redis, keys, QUEUE, 'w-x', { onError: (e) => errors.push(e) });
      try {
        // A key of the wrong type makes Redis answer ZADD with an error.
        await redis.set(loading, 'not a zset');
        signals.startLoading();
        await signals.beat();
        await signals.beat();
        await until('the first failure', () => Promise.resolve(errors.length >= 1));
        expect(errors).toHaveLength(1);
        await redis.del(loading);
        await signals.beat();
        await redis.set(loading, 'not a zset');
        await signals.beat();
        expect(errors).toHaveLength(2);
        await signals.withdraw();
      } finally {
        await cleanup(redis, keys);
      }
    });
  });
});
