import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatBody, png, postJson } from '../support/requests';
import { PrivateRedis } from '../support/redis-server';
import { startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

describe('when Redis goes away', () => {
  const prefix = uniquePrefix();
  let redis: PrivateRedis;
  let gw: GatewayHandle;
  let worker: WorkerProcess;

  beforeAll(async () => {
    redis = await PrivateRedis.start();
    [gw, worker] = await Promise.all([startGateway(prefix, { REDIS_URL: redis.url }), startWorker(prefix, {}, redis.url)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker, 'SIGKILL');
    await redis?.dispose();
  });

  it('answers 503 with Retry-After at once, reports not ready, and recovers when Redis is back', async () => {
    const image = await png(16, 16, 8);
    expect((await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'before', { max_tokens: 2 }))).status).toBe(200);

    await redis.down();
    const started = Date.now();
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'during', { max_tokens: 2 }));
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('service_unavailable');
    // Fails fast instead of queueing the request in memory (generous bound: no timing assertion on speed).
    expect(Date.now() - started).toBeLessThan(10_000);
    const ready = await fetch(`${gw.url}/health/ready`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${gw.url}/health/live`)).status).toBe(200);

    await redis.up();
    // The worker reconnects by itself and its heartbeat makes the gateway ready again.
    await until('the gateway to be ready again', async () => (await fetch(`${gw.url}/health/ready`)).status === 200, 30_000);
    const after = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'after', { max_tokens: 2 }));
    expect(after.status).toBe(200);
  });
});
