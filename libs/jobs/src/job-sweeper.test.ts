import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_JOB, RedisKeys, poolQueue, type DecodingParams, type JobEvent } from '@fastvlm/contracts';
import { AnswerCache } from './answer-cache';
import { ImageStore } from './image-store';
import { JobStore } from './job-store';
import { poolHolds } from './fair-queue';
import { JobSweeper } from './job-sweeper';
import { submitInference, type Enqueue, type SubmitDeps } from './submit';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';

const GRACE_MS = 60_000;
const PARAMS: DecodingParams = { maxTokens: 8, temperature: 0.5, topP: 1, stop: [] };

describe('JobSweeper on real Redis and BullMQ', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let queue: Queue;
  let store: JobStore;
  let sweeper: JobSweeper;

  const add: Enqueue = async (data) => (await queue.add(INFERENCE_JOB, data, { jobId: data.id })).id ?? '';
  const deps = (enqueue: Enqueue): SubmitDeps => ({
    store,
    images: new ImageStore(redis, keys, 60),
    answers: new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60 }),
    enqueue,
    servedModel: () => Promise.resolve({ id: 'm', revision: 'r1' }),
    now: () => Date.now(),
  });
  const submit = (jobId: string, enqueue: Enqueue) =>
    submitInference(deps(enqueue), { tenant: 'acme', model: 'm', image: Buffer.from('img'), question: jobId, params: PARAMS, mode: 'async', jobId });
  const lastEvent = async (id: string): Promise<JobEvent | undefined> => {
    const all = await redis.xrange(keys.events(id), '-', '+');
    return JSON.parse(all.at(-1)?.[1][1] ?? 'null') as JobEvent | undefined;
  };
  /** A sweep run as if the grace period had passed. */
  const later = () => Date.now() + GRACE_MS + 1;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    queue = new Queue(poolQueue('m'), { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    store = new JobStore(redis, keys, 60);
    // Each record's model names its pool's queue.
    sweeper = new JobSweeper(store, poolHolds(redis, keys), { graceMs: GRACE_MS, batch: 100 });
  });
  afterAll(async () => {
    await queue.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('fails a job whose gateway died between creating its record and enqueueing it (enqueue_lost), once the grace period has passed', async () => {
    // The record exists; the gateway never got to the queue.
    await store.create({ id: 'job_never_enqueued', tenant: 'acme', model: 'm', createdAt: Date.now() });
    expect(await sweeper.tick(Date.now())).toEqual({ checked: 0, failed: [] });
    expect((await store.get('job_never_enqueued'))?.status).toBe('queued');
    expect(await sweeper.tick(later())).toEqual({ checked: 1, failed: ['job_never_enqueued'] });
    const rec = await store.get('job_never_enqueued');
    expect(rec?.status).toBe('failed');
    expect(rec?.error?.code).toBe('enqueue_lost');
    expect(await lastEvent('job_never_enqueued')).toEqual({ type: 'error', error: rec?.error });
    expect(await redis.ttl(keys.job('job_never_enqueued'))).toBeGreaterThan(0);
    expect(await redis.zscore(keys.pendingJobs(), 'job_never_enqueued')).toBeNull();
  });

  it('leaves alone a job whose enqueue reply was lost after the add, and fails one whose add never happened', async () => {
    // The add reached Redis, then the connection dropped before its reply.
    const replyLost: Enqueue = async (data, opts) => {
      await add(data, opts);
      throw new Error('Connection is closed.');
    };
    await expect(submit('job_reply_lost', replyLost)).rejects.toThrow('Connection is closed.');
    await expect(submit('job_add_failed', () => Promise.reject(new Error('Connection is closed.')))).rejects.toThrow('Connection is closed.');
    const report = await sweeper.tick(later());
    expect(report.failed).toEqual(['job_add_failed']);
    expect((await store.get('job_reply_lost'))?.status).toBe('queued');
    expect(await queue.getJob('job_reply_lost')).toBeDefined();
    expect((await store.get('job_add_failed'))?.error?.code).toBe('enqueue_lost');
    // Both leave the index: the queued one is the queue's business now.
    expect(await redis.zscore(keys.pendingJobs(), 'job_reply_lost')).toBeNull();
    expect(await redis.zscore(keys.pendingJobs(), 'job_add_failed')).toBeNull();
  });

  it('looks for a job on the queue of the model its record names, not on another pool\'s', async () => {
    // Enqueued on model n's pool, as the gateway routes a request naming n.
    const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
    const other = new Queue(poolQueue('n'), { connection, prefix: keys.bull() });
    try {
      await store.create({ id: 'job_on_pool_n', tenant: 'acme', model: 'n', createdAt: Date.now() });
      await other.add(INFERENCE_JOB, { id: 'job_on_pool_n' }, { jobId: 'job_on_pool_n' });
      // Recorded for model n but never enqueued anywhere, and one on model m's queue while its record says n.
      await store.create({ id: 'job_lost_of_n', tenant: 'acme', model: 'n', createdAt: Date.now() });
      await store.create({ id: 'job_wrong_pool', tenant: 'acme', model: 'n', createdAt: Date.now() });
      await queue.add(INFERENCE_JOB, { id: 'job_wrong_pool' }, { jobId: 'job_wrong_pool' });
      const report = await sweeper.tick(later());
      expect(report.failed.sort()).toEqual(['job_lost_of_n', 'job_wrong_pool']);
      expect((await store.get('job_on_pool_n'))?.status).toBe('queued');
    } finally {
      await other.obliterate({ force: true });
      await other.close();
      connection.disconnect();
      await queue.remove('job_wrong_pool');
    }
  });

  it('looks at no more than its batch per tick, oldest first, and never at claimed or finished jobs', async () => {
    const small = new JobSweeper(store, poolHolds(redis, keys), { graceMs: GRACE_MS, batch: 2 });
    const t = Date.now();
    for (const [i, id] of ['job_b1', 'job_b2', 'job_b3'].entries()) await store.create({ id, tenant: 'acme', model: 'm', createdAt: t + i });
    await store.create({ id: 'job_b_started', tenant: 'acme', model: 'm', createdAt: t - 10 });
    await store.start('job_b_started', t, 1);
    expect(await small.tick(later())).toEqual({ checked: 2, failed: ['job_b1', 'job_b2'] });
    expect(await small.tick(later())).toEqual({ checked: 1, failed: ['job_b3'] });
    expect(await small.tick(later())).toEqual({ checked: 0, failed: [] });
    expect((await store.get('job_b_started'))?.status).toBe('running');
  });

  it('fails a lost job once when several workers sweep at the same time', async () => {
    await store.create({ id: 'job_swept_by_many', tenant: 'acme', model: 'm', createdAt: Date.now() });
    const now = later();
    const reports = await Promise.all([sweeper.tick(now), sweeper.tick(now), sweeper.tick(now)]);
    expect(reports.flatMap((r) => r.failed)).toEqual(['job_swept_by_many']);
    const errors = (await redis.xrange(keys.events('job_swept_by_many'), '-', '+')).filter(([, f]) => f[1]?.includes('"error"'));
    expect(errors).toHaveLength(1);
  });
});
