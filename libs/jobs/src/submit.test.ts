import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_JOB, InferenceJobDataSchema, RedisKeys, type DecodingParams, type InferenceJobData, poolQueue } from '@fastvlm/contracts';
import { AnswerCache } from './answer-cache';
import { ImageStore } from './image-store';
import { JobStore } from './job-store';
import { submitInference, type Enqueue, type SubmitDeps, type SubmitInput } from './submit';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';

const GREEDY: DecodingParams = { maxTokens: 8, temperature: 0, topP: 1, stop: [] };

describe('submitInference on real Redis and BullMQ', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let queue: Queue;
  let store: JobStore;
  let deps: SubmitDeps;

  /** The gateway's enqueue: the public id is the BullMQ id, identical sync requests share one job. */
  const enqueue: Enqueue = async (data, opts) => {
    const job = await queue.add(INFERENCE_JOB, data, { jobId: data.id, ...(opts.deduplicationId ? { deduplication: { id: opts.deduplicationId } } : {}) });
    if (!job.id) throw new Error('no id');
    return job.id;
  };
  const input = (question: string, over: Partial<SubmitInput> = {}): SubmitInput => ({
    tenant: 'acme',
    model: 'm',
    image: Buffer.from(`image for ${question}`),
    question,
    params: GREEDY,
    mode: 'sync',
    ...over,
  });
  const queuedData = async (id: string): Promise<InferenceJobData> => InferenceJobDataSchema.parse((await queue.getJob(id))?.data);

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    queue = new Queue(poolQueue('m'), { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    store = new JobStore(redis, keys, 60);
    deps = {
      store,
      images: new ImageStore(redis, keys, 60),
      answers: new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60 }),
      enqueue,
      servedModel: () => Promise.resolve({ id: 'm', revision: 'r1' }),
      now: () => Date.now(),
    };
  });
  afterAll(async () => {
    await queue.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('gives a job without a seed a run seed of its own, outside its params and its cache key', async () => {
    const a = await submitInference(deps, input('seedless', { mode: 'async' }));
    const b = await submitInference(deps, input('seedless', { mode: 'async' }));
    const seeded = await submitInference(deps, input('seeded', { mode: 'async', params: { ...GREEDY, temperature: 0.7, seed: 5 } }));
    if (a.kind !== 'queued' || b.kind !== 'queued' || seeded.kind !== 'queued') throw new Error('expected queued jobs');
    const [da, db, ds] = await Promise.all([queuedData(a.jobId), queuedData(b.jobId), queuedData(seeded.jobId)]);
    for (const d of [da, db]) {
      expect(d.runSeed).toBeGreaterThanOrEqual(0);
      expect(d.runSeed).toBeLessThanOrEqual(2 ** 32 - 1);
      expect(d.params).toEqual(GREEDY);
    }
    // Two identical requests: one cache key, two independent draws.
    expect(a.cacheKey).toBe(b.cacheKey);
    expect(da.runSeed).not.toBe(db.runSeed);
    expect(ds.runSeed).toBeUndefined();
    expect(ds.params.seed).toBe(5);
  });

  it("writes the job's deadline into its record, and lets the record outlive it by the job TTL", async () => {
    const out = await submitInference(deps, input('deadline', { mode: 'async', deadlineMs: 120_000 }));
    if (out.kind !== 'queued') throw new Error('expected a queued job');
    const rec = await store.get(out.jobId);
    expect(rec?.deadline).toBe(out.createdAt + 120_000);
    expect((await queuedData(out.jobId)).deadline).toBe(out.createdAt + 120_000);
    expect(await redis.ttl(keys.job(out.jobId))).toBeGreaterThan(170);
  });

  it('keeps the record of a job whose enqueue failed, for the sweeper to decide', async () => {
    const lost: SubmitDeps = {
      ...deps,
      enqueue: () => Promise.reject(new Error('Connection is closed.')),
    };
    await expect(submitInference(lost, input('enqueue fails', { mode: 'async', jobId: 'job_enqueue_failed' }))).rejects.toThrow('Connection is closed.');
    expect((await store.get('job_enqueue_failed'))?.status).toBe('queued');
    expect(await redis.zscore(keys.pendingJobs(), 'job_enqueue_failed')).not.toBeNull();
  });

  it('has an identical sync request follow a job in flight, and discards its own record', async () => {
    const first = await submitInference(deps, input('shared'));
    const second = await submitInference(deps, input('shared', { jobId: 'job_follower' }));
    if (first.kind !== 'queued' || second.kind !== 'queued') throw new Error('expected queued jobs');
    expect(second).toMatchObject({ jobId: first.jobId, deduplicated: true });
    expect(await store.get('job_follower')).toBeNull();
    expect(await redis.zscore(keys.pendingJobs(), 'job_follower')).toBeNull();
  });

  it('never has a request join a cancelled job: an identical request runs as a job of its own', async () => {
    const first = await submitInference(deps, input('cancelled carrier'));
    if (first.kind !== 'queued') throw new Error('expected a queued job');
    // Cancelled while still waiting: its BullMQ job and de-duplication key remain until a worker takes it.
    expect((await store.cancel(first.jobId, Date.now())).ok).toBe(true);
    const again = await submitInference(deps, input('cancelled carrier', { jobId: 'job_after_cancel' }));
    expect(again).toMatchObject({ kind: 'queued', jobId: 'job_after_cancel', deduplicated: false });
    expect((await store.get('job_after_cancel'))?.status).toBe('queued');
    expect((await queue.getJob('job_after_cancel'))?.data).toMatchObject({ id: 'job_after_cancel', question: 'cancelled carrier' });
  });
});
