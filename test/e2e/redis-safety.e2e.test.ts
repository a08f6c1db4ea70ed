import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertQueueRedisSafe, queueRedisProblem } from '@fastvlm/jobs';
import { scrape, value, workerHttpUrl } from '../observability/prom';
import { OddRedis } from '../support/redis-modes';
import { PrivateRedis } from '../support/redis-server';
import { startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface Health {
  status: string;
  error?: Record<string, { status: string; message?: string }>;
}

const health = async (url: string): Promise<{ status: number; body: Health }> => {
  const res = await fetch(`${url}/health/ready`);
  return { status: res.status, body: (await res.json()) as Health };
};

const CLUSTER = /^The queue Redis \(REDIS_URL\) is a Redis Cluster node \(redis_mode:cluster\)\. Give the cluster as REDIS_CLUSTER_NODES=host:port,… /;
const SENTINEL = /^The queue Redis \(REDIS_URL\) is a Redis Sentinel \(redis_mode:sentinel\), which monitors Redis servers but stores no data\. Give the Sentinels as REDIS_SENTINELS=/;

describe('queue Redis safety', () => {
  let cluster: OddRedis;
  let sentinel: OddRedis;
  const prefix = uniquePrefix();

  beforeAll(async () => {
    [cluster, sentinel] = await Promise.all([OddRedis.cluster(), OddRedis.sentinel()]);
  });
  afterAll(async () => {
    await Promise.all([cluster?.dispose(), sentinel?.dispose()]);
  });

  it('the start-up check refuses a Cluster node and a Sentinel given as REDIS_URL, each naming the variable to use instead, and accepts a standalone noeviction Redis', async () => {
    const own = await PrivateRedis.start();
    const clients = [cluster.url, sentinel.url, own.url].map((url) => new Redis(url, { maxRetriesPerRequest: 1 }));
    const [c, s, plain] = clients as [Redis, Redis, Redis];
    try {
      expect(await queueRedisProblem(c)).toMatch(CLUSTER);
      expect(await queueRedisProblem(s)).toMatch(SENTINEL);
      await expect(assertQueueRedisSafe(c)).rejects.toMatchObject({ code: 'service_unavailable', message: expect.stringMatching(CLUSTER) as unknown });
      await expect(assertQueueRedisSafe(s)).rejects.toMatchObject({ code: 'service_unavailable', message: expect.stringMatching(SENTINEL) as unknown });
      expect(await queueRedisProblem(plain)).toBeNull();
      await plain.config('SET', 'maxmemory-policy', 'volatile-lru');
      expect(await queueRedisProblem(plain)).toBe(
        'The queue Redis uses maxmemory-policy "volatile-lru"; it must be "noeviction" so that jobs are never lost (set it with CONFIG SET maxmemory-policy noeviction or in redis.conf).',
      );
    } finally {
      for (const r of clients) r.disconnect();
      await own.dispose();
    }
  });

  it('a worker given a Redis Cluster node as REDIS_URL refuses to start, and says to use REDIS_CLUSTER_NODES', async () => {
    const error = await startWorker(prefix, {}, cluster.url).then(
      async (w) => {
        await stopWorker(w, 'SIGKILL');
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain('worker failed to start: The queue Redis (REDIS_URL) is a Redis Cluster node (redis_mode:cluster).');
  }, 90_000);

  it('the gateway given a Sentinel as REDIS_URL refuses to start, and says to use REDIS_SENTINELS', async () => {
    const error = await startGateway(prefix, { REDIS_URL: sentinel.url }).then(
      async (g) => {
        await g.close();
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(SENTINEL);
  });
});

describe('when the eviction policy changes while running', () => {
  const prefix = uniquePrefix();
  let own: PrivateRedis;
  let admin: Redis;
  let gw: GatewayHandle;
  let worker: WorkerProcess;

  beforeAll(async () => {
    own = await PrivateRedis.start();
    admin = new Redis(own.url);
    const every = { REDIS_SAFETY_CHECK_INTERVAL_MS: '200' };
    [gw, worker] = await Promise.all([startGateway(prefix, { REDIS_URL: own.url, ...every }), startWorker(prefix, every, own.url)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker, 'SIGKILL');
    admin?.disconnect();
    await own?.dispose();
  });

  it('worker and gateway turn not ready with the reason, log it and raise the gauge, and recover when noeviction is back', async () => {
    const wurl = workerHttpUrl(worker);
    await until('both to be ready', async () => (await health(wurl)).status === 200 && (await health(gw.url)).status === 200);
    expect(value(await scrape(wurl), 'fastvlm_queue_redis_unsafe')).toBe(0);
    expect(value(await scrape(gw.url), 'fastvlm_queue_redis_unsafe')).toBe(0);

    await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
    const reason = 'The queue Redis uses maxmemory-policy "allkeys-lru"; it must be "noeviction" so that jobs are never lost (set it with CONFIG SET maxmemory-policy noeviction or in redis.conf).';
    for (const url of [wurl, gw.url]) {
      const h = await until(`${url} to turn not ready`, async () => {
        const r = await health(url);
        return r.status === 503 ? r : undefined;
      });
      expect(h.body.error?.redis).toEqual({ status: 'down', message: reason });
      expect(value(await scrape(url), 'fastvlm_queue_redis_unsafe')).toBe(1);
    }
    expect(worker.output()).toContain('"QUEUE REDIS IS UNSAFE: jobs may be evicted and lost; not ready until it is fixed"');

    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    for (const url of [wurl, gw.url]) {
      await until(`${url} to be ready again`, async () => (await health(url)).status === 200);
      expect(value(await scrape(url), 'fastvlm_queue_redis_unsafe')).toBe(0);
    }
  });
});
