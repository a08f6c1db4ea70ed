import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { WorkerRegistry } from '@fastvlm/jobs';
import { chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until } from '../support/stack';
import { scrape, value, workerHttpUrl } from './prom';

interface Health {
  status: string;
  info?: Record<string, { status: string }>;
  error?: Record<string, { status: string; message?: string }>;
}

const health = async (url: string): Promise<{ status: number; body: Health }> => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Health };
};

describe('health probes', () => {
  const prefix = uniquePrefix();
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  it('worker: live and ready with its model and Redis; on SIGTERM not ready while it finishes its job, then exits 0', async () => {
    const gw = await startGateway(prefix);
    const worker = await startWorker(prefix);
    try {
      const url = workerHttpUrl(worker);
      expect((await health(`${url}/health/live`)).status).toBe(200);
      const ready = await health(`${url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.body.info?.model?.status).toBe('up');
      expect(ready.body.info?.redis?.status).toBe('up');

      const res = await postJson(`${gw.url}/v1/jobs`, chatBody(await png(20, 20, 3), 'a long answer to drain', { max_tokens: 250 }));
      const { id } = (await res.json()) as { id: string };
      await until('the job to run', async () => value(await scrape(url), 'fastvlm_jobs_running') === 1);
      worker.child.kill('SIGTERM');
      const draining = await until('readiness to turn false', async () => {
        const h = await health(`${url}/health/ready`);
        return h.status === 503 ? h : undefined;
      });
      expect(draining.body.error?.model?.message).toMatch(/draining/);
      expect(value(await scrape(url), 'fastvlm_model_loaded', { model: 'tiny-random' })).toBe(0);
      // Still alive while it drains.
      expect((await health(`${url}/health/live`)).status).toBe(200);
      expect(await worker.exited).toBe(0);
      // The drained worker withdrew: the gateway reports none alive (a zero, not a missing series).
      expect(value(await scrape(gw.url), 'fastvlm_workers_alive', { model: 'tiny-random' })).toBe(0);
      const job = (await (await fetch(`${gw.url}/v1/jobs/${id}`, { headers: { authorization: 'Bearer acme-key-0123456789abcdef' } })).json()) as { status: string };
      expect(job.status).toBe('succeeded');
    } finally {
      await stopWorker(worker, 'SIGKILL');
      await gw.close();
    }
  });

  it('gateway: not ready with no worker alive, unless workers scale to zero (READINESS_REQUIRES_WORKER=false)', async () => {
    const empty = uniquePrefix();
    const strict = await startGateway(empty);
    const scaledToZero = await startGateway(empty, { READINESS_REQUIRES_WORKER: 'false' });
    try {
      const refused = await health(`${strict.url}/health/ready`);
      expect(refused.status).toBe(503);
      expect(refused.body.error?.workers?.message).toBe('no worker with tiny-random loaded');
      const ready = await health(`${scaledToZero.url}/health/ready`);
      expect(ready.status).toBe(200);
      expect(ready.body.info?.workers).toMatchObject({ status: 'up', count: 0 });
      // A job is accepted and waits for the worker that the autoscaler starts.
      const res = await postJson(`${scaledToZero.url}/v1/jobs`, chatBody(await png(20, 20, 3), 'wake a worker', { max_tokens: 2 }));
      expect(res.status).toBe(202);
    } finally {
      await strict.close();
      await scaledToZero.close();
      await cleanupPrefix(empty);
    }
  });

  it('gateway: ready with a live worker; during shutdown not ready while still answering', async () => {
    // A registered worker is all the gateway's readiness needs; no model has to run here.
    await new WorkerRegistry(redis, new RedisKeys(prefix)).announce(
      { id: 'probe-worker', model: 'tiny-random', revision: 'r', dtype: 'fp32', device: 'cpu', pid: 1, startedAt: Date.now(), queue: poolQueue('tiny-random') },
      Date.now(),
    );
    const gw = await startGateway(prefix, { SHUTDOWN_GRACE_MS: '5000' });
    const ready = await health(`${gw.url}/health/ready`);
    expect(ready.status).toBe(200);
    expect(ready.body.info?.gateway?.status).toBe('up');
    const closing = gw.close();
    const draining = await until('readiness to turn false', async () => {
      const h = await health(`${gw.url}/health/ready`);
      return h.status === 503 ? h : undefined;
    });
    expect(draining.body.error?.gateway?.message).toMatch(/draining/);
    expect((await health(`${gw.url}/health/live`)).status).toBe(200);
    await closing;
  });
});
