import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import calculateSlot from 'cluster-key-slot';
import type { Redis } from 'ioredis';
import { RedisKeys, type InferenceResult, type JobEvent } from '@fastvlm/contracts';
import { EventHub } from './event-hub';
import { JobStore } from './job-store';
import { asCluster, createRedis, queueRedisProblem, waitReady } from './redis';
import { RedisClusterGroup } from './test-redis-cluster';
import { testPrefix } from './test-redis';
import { WorkerRegistry } from './worker-registry';

describe('on a Redis Cluster of three primaries', () => {
  let cluster: RedisClusterGroup;
  let redis: Redis;
  let sub: Redis;
  const keys = new RedisKeys(testPrefix());

  beforeAll(async () => {
    cluster = await RedisClusterGroup.start(3);
    redis = createRedis(cluster.target, 'consumer', 'cluster-test', () => undefined);
    sub = createRedis(cluster.target, 'subscriber', 'cluster-test-sub', () => undefined);
    await waitReady(redis, 10_000);
    await waitReady(sub, 10_000);
  }, 60_000);
  afterAll(async () => {
    redis?.disconnect();
    sub?.disconnect();
    await cluster?.dispose();
  });

  it('keeps a job\'s keys in one slot, the shared keys in another, and spreads jobs over the slots', () => {
    const slot = (k: string): number => calculateSlot(k);
    expect(new Set([keys.job('a'), keys.events('a'), keys.eventsChannel('a'), keys.syncWaiters('a')].map(slot)).size).toBe(1);
    const shared = [keys.bull(), keys.workers(), keys.worker('w'), keys.pendingJobs(), keys.tenantJobs('t'), keys.autoscale('inference', 'samples'), keys.modelLoadFailures()];
    expect(new Set(shared.map(slot))).toEqual(new Set([slot(`${keys.bull()}:inference:wait`)]));
    const jobSlots = new Set(Array.from({ length: 50 }, (_, i) => slot(keys.job(`job_${i}`))));
    expect(jobSlots.size).toBeGreaterThan(40);
  });

  it('creates, runs and finishes jobs created together (one batch split per slot), and a follower sees every event through sharded pub/sub', async () => {
    expect(asCluster(redis)).not.toBeNull();
    const store = new JobStore(redis, keys, 60);
    const hub = new EventHub(sub, redis, keys, { idleResyncMs: 0 });
    const ids = Array.from({ length: 12 }, (_, i) => `job_cluster_${i}`);
    // Created in one turn of the event loop: one batch, whose calls live in many slots.
    const created = await Promise.all(ids.map((id) => store.create({ id, tenant: 'acme', model: 'm', createdAt: 1 })));
    expect(created).toEqual(ids.map(() => true));
    expect(new Set(ids.map((id) => calculateSlot(keys.job(id)))).size).toBeGreaterThan(1);
    expect(await redis.zcard(keys.pendingJobs())).toBe(12);

    const id = ids[0] as string;
    const seen: JobEvent[] = [];
    const follow = (async () => {
      for await (const { event } of hub.follow(id, '0')) seen.push(event);
    })();
    const started = await store.start(id, 2, 1);
    expect(started).toEqual({ ok: true, from: 'queued', attempt: 1 });
    expect(await redis.zscore(keys.pendingJobs(), id)).toBeNull();
    expect(await store.appendToken(id, 0, 'Hel', 1)).toBe(true);
    expect(await store.appendToken(id, 1, 'lo', 1)).toBe(true);
    const result: InferenceResult = { text: 'Hello', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: 2 }, model: 'm', finishedAt: 3, timings: { queueMs: 1, inferenceMs: 2 } };
    expect(await store.succeed(id, result, 1)).toEqual({ ok: true, from: 'running' });
    await follow;
    expect(seen.map((e) => e.type)).toEqual(['status', 'status', 'token', 'token', 'done']);
  });

  it('prunes dead workers and keeps live ones', async () => {
    const registry = new WorkerRegistry(redis, keys, 1_000);
    const info = { model: 'm', revision: 'r', dtype: 'q4', device: 'cpu', pid: 1, startedAt: 0, queue: 'inference' };
    await registry.announce({ ...info, id: 'old' }, 0);
    await registry.announce({ ...info, id: 'new' }, 100_000);
    expect(await registry.prune(100_000)).toBe(1);
    expect((await registry.alive(100_000)).map((w) => w.id)).toEqual(['new']);
  });

  it('checks the eviction policy of every primary', async () => {
    expect(await queueRedisProblem(redis)).toBeNull();
    const port = cluster.ports[2] as number;
    await cluster.onNode(port, (c) => c.config('SET', 'maxmemory-policy', 'allkeys-lru'));
    try {
      expect(await queueRedisProblem(redis)).toBe(
        `The queue primary 127.0.0.1:${port} uses maxmemory-policy "allkeys-lru"; it must be "noeviction" so that jobs are never lost (set it with CONFIG SET maxmemory-policy noeviction or in redis.conf).`,
      );
    } finally {
      await cluster.onNode(port, (c) => c.config('SET', 'maxmemory-policy', 'noeviction'));
    }
  });
});
