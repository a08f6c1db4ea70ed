import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { JobStore } from '@fastvlm/jobs';
import { REDIS_URL, cleanupPrefix, startWorker, stopWorker, uniquePrefix, until, type WorkerProcess } from '../support/stack';

/** A worker that sweeps often and counts a record as lost one second after its creation. */
const FAST_SWEEP = { JOB_SWEEP_INTERVAL_MS: '200', JOB_SWEEP_GRACE_MS: '1000' };

describe('a worker ends the jobs nobody else will', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: JobStore;
  let worker: WorkerProcess;

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    store = new JobStore(redis, keys, 600);
    worker = await startWorker(prefix, FAST_SWEEP);
  });
  afterAll(async () => {
    if (worker) await stopWorker(worker);
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  it('fails enqueue_lost a job whose gateway died between creating its record and enqueueing it', async () => {
    // What the gateway leaves behind when it dies right after creating the record.
    await store.create({ id: 'job_gateway_died', tenant: 'acme', model: 'tiny-random', createdAt: Date.now() });
    await until('the sweeper to end the record', async () => (await store.get('job_gateway_died'))?.status === 'failed');
    expect((await store.get('job_gateway_died'))?.error?.code).toBe('enqueue_lost');
    // The record is failed before the sweeper logs it.
    await until('the sweeper to log it', () => worker.output().includes('"jobId":"job_gateway_died"'));
  });

  it('fails a job the queue failed while its record still said running, with the reason the queue gave', async () => {
    // A job BullMQ failed without any run ending its record (here: failed by hand, as an operator or a stalled check would).
    const queue = new Queue(poolQueue('tiny-random'), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    try {
      await store.create({ id: 'job_failed_by_queue', tenant: 'acme', model: 'tiny-random', createdAt: Date.now() });
      await store.start('job_failed_by_queue', Date.now(), 1);
      // A job no worker can take (a name the worker refuses); BullMQ fails it, the record stays running.
      const job = await queue.add('not-a-chat', { id: 'job_failed_by_queue' }, { jobId: 'job_failed_by_queue' });
      await until('BullMQ to fail the job', async () => (await job.getState()) === 'failed');
      await until('the record to end', async () => (await store.get('job_failed_by_queue'))?.status === 'failed');
      const rec = await store.get('job_failed_by_queue');
      expect(rec?.error).toEqual({ code: 'internal', message: 'The queue failed the job: unknown job name "not-a-chat"' });
    } finally {
      await queue.close();
    }
  });
});
