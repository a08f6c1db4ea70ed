import { status } from '@grpc/grpc-js';
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import type { ScalerApp } from '../../apps/scaler/src/scaler-app';
import { count, scrape } from '../observability/prom';
import { REDIS_URL, cleanupPrefix, uniquePrefix, until } from '../support/stack';
import { KedaClient, ref, startTestScaler, testQueue } from './harness';

/** A minute between ticks: whatever the stream gets within a few seconds, the tick did not deliver. */
const TICK_MS = 60_000;

describe('StreamIsActive (KEDA external-push)', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let scaler: ScalerApp;
  let keda: KedaClient;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    scaler = await startTestScaler(prefix, { SCALER_TICK_MS: String(TICK_MS) });
    keda = new KedaClient(scaler.grpcAddress);
  });
  afterAll(async () => {
    keda.close();
    await scaler.close();
    await cleanupPrefix(prefix);
    redis.disconnect();
  });

  it('pushes true as soon as the first job reaches an idle queue, then false once the job is done and the grace period has passed', async () => {
    const queue = testQueue(prefix, 'push');
    const stream = keda.streamIsActive(ref('pushed', { queue: 'push', scaleToZeroGraceSeconds: '2' }));
    let worker: Worker | null = null;
    try {
      await until('the current value', () => stream.values.length === 1, 10_000);
      expect(stream.values[0]?.result).toBe(false);

      // What a gateway does: count the arrival, enqueue the job.
      await redis.incr(keys.autoscale('push', 'arrivals'));
      const addedAt = Date.now();
      await queue.add('chat', { q: 1 });
      await until('true pushed long before the next tick', () => stream.values.length === 2, TICK_MS / 6);
      const latencyMs = (stream.values[1]?.at ?? 0) - addedAt;
      console.log(`StreamIsActive pushed true ${latencyMs} ms after the first job was added (tick every ${TICK_MS} ms)`);
      expect(stream.values[1]?.result).toBe(true);

      // A worker takes the job and finishes it; after the 2 s grace with no arrival the queue is idle.
      worker = new Worker('push', () => Promise.resolve('done'), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
      await until('false pushed after the grace period', () => stream.values.length === 3, TICK_MS / 4);
      expect(stream.values[2]?.result).toBe(false);
      expect(await queue.getCompletedCount()).toBe(1);
      expect(await keda.isActive(ref('pushed', { queue: 'push', scaleToZeroGraceSeconds: '2' }))).toBe(false);
    } finally {
      stream.cancel();
      await worker?.close();
      await queue.close();
    }
    expect((await stream.ended).code).toBe(status.CANCELLED);
    // The server saw the cancel and let the stream go.
    await until('the cancelled stream to be counted', async () => count(await scrape(scaler.httpUrl), 'fastvlm_scaler_grpc_requests_total', { method: 'StreamIsActive', code: 'CANCELLED' }) === 1);
  });

  it('pushes only changes, to every stream of the ScaledObject, and ends them when the scaler stops', async () => {
    const queue = testQueue(prefix, 'fanout');
    const so = ref('fanout', { queue: 'fanout' });
    const other = await startTestScaler(prefix, { SCALER_TICK_MS: '200' });
    const client = new KedaClient(other.grpcAddress);
    try {
      const streams = [client.streamIsActive(so), client.streamIsActive(so)];
      await until('both current values', () => streams.every((s) => s.values.length === 1), 10_000);
      await queue.addBulk([1, 2, 3].map((i) => ({ name: 'chat', data: { i } })));
      await until('true on both', () => streams.every((s) => s.values.length === 2), 10_000);
      // Ticks go on five times a second; with the backlog unchanged nothing more is pushed.
      const ticked = await redis.xlen(keys.autoscale('fanout', 'samples'));
      await until('a few more ticks', async () => (await redis.xlen(keys.autoscale('fanout', 'samples'))) >= ticked + 2, 10_000);
      for (const s of streams) expect(s.values.map((v) => v.result)).toEqual([false, true]);
      await other.close();
      for (const s of streams) expect((await s.ended).code).toBe(status.OK);
    } finally {
      client.close();
      await other.close();
      await queue.close();
    }
  });
});
