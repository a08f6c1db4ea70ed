import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_JOB, InferenceJobDataSchema, RedisKeys, type InferenceJobData, type JobEvent, poolQueue } from '@fastvlm/contracts';
import type { GenerateRequest, GenerateResult } from '@fastvlm/pipeline';
import { AnswerCache } from './answer-cache';
import { ImageStore, sha256Hex } from './image-store';
import { JobReconciler, STALLED_LIMIT_REASON, failureFromReason } from './job-reconciler';
import { JobStore } from './job-store';
import { processInferenceJob, type InferenceEngine } from './process-job';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';
import { waitFor } from './test-redis-server';

const ROOT = join(import.meta.dirname, '..', '..', '..');

interface ChildWorker {
  proc: ChildProcess;
  output: () => string;
  exited: Promise<unknown>;
}

/** A worker process (test-stalling-worker.ts): a real BullMQ Worker whose runs never finish by themselves. */
async function startChild(prefix: string): Promise<ChildWorker> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'test-stalling-worker.ts'), TEST_REDIS_URL, prefix], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => proc.once('exit', r));
  await waitFor('the child worker to be ready', () => {
    if (proc.exitCode !== null) throw new Error(`child worker exited:\n${out}`);
    return out.includes('ready');
  });
  return { proc, output: () => out, exited };
}

async function kill(w: ChildWorker): Promise<void> {
  w.proc.kill('SIGKILL');
  await w.exited;
}

describe('JobReconciler', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let queue: Queue;
  let events: QueueEvents;
  let store: JobStore;
  const children: ChildWorker[] = [];

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    queue = new Queue(poolQueue('fake-model'), { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    store = new JobStore(redis, keys, 60);
    // This process runs no BullMQ worker: it only reads the queue's events, as every worker does.
    const reconciler = new JobReconciler(store, () => Date.now());
    events = new QueueEvents(poolQueue('fake-model'), { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    events.on('failed', ({ jobId, failedReason }) => void reconciler.failed(jobId, failedReason));
    events.on('completed', ({ jobId }) => void reconciler.completed(jobId));
    await events.waitUntilReady();
  });
  afterAll(async () => {
    await Promise.all(children.map((c) => kill(c)));
    await events.close();
    await queue.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('fails with worker_lost a job whose workers died twice, though the worker that failed it in BullMQ never ran it', async () => {
    const image = Buffer.from('poison');
    const id = 'job_poison';
    await store.create({ id, tenant: 'acme', model: 'fake-model', createdAt: Date.now() });
    await new ImageStore(redis, keys, 60).write(image);
    const data: InferenceJobData = {
      id,
      tenant: 'acme',
      model: 'fake-model',
      modelRevision: 'rev-1',
      image: { sha256: sha256Hex(image), bytes: image.length },
      question: 'kills its worker',
      params: { maxTokens: 4096, temperature: 0, topP: 1, stop: [] },
      cacheKey: null,
      createdAt: Date.now(),
    };
    await queue.add(INFERENCE_JOB, data, { jobId: id, attempts: 3 });
    const streaming = async (attempt: number): Promise<boolean> => {
      const entries = await redis.xrange(keys.events(id), '-', '+');
      return entries.some(([, f]) => {
        const e = JSON.parse(f[1] ?? '{}') as JobEvent;
        return e.type === 'token' && e.attempt === attempt;
      });
    };
    for (const run of [1, 2]) {
      const victim = await startChild(prefix);
      children.push(victim);
      await waitFor(`run ${run} to stream tokens`, () => streaming(run));
      await kill(victim);
    }
    // The next worker's stalled check finds the job over maxStalledCount: BullMQ fails it without calling the processor.
    const next = await startChild(prefix);
    children.push(next);
    await waitFor('the record to end', async () => (await store.status(id)) === 'failed');
    expect(await queue.getJobState(id)).toBe('failed');
    expect((await queue.getJob(id))?.failedReason).toBe(STALLED_LIMIT_REASON);
    const rec = await store.get(id);
    expect(rec?.error?.code).toBe('worker_lost');
    expect(rec?.attempt).toBe(2);
    expect(next.output()).not.toContain('claimed');
    const last = (await redis.xrange(keys.events(id), '-', '+')).at(-1);
    expect(JSON.parse(last?.[1][1] ?? '{}')).toEqual({ type: 'error', error: rec?.error });
    // Ended records expire: nothing holds the tenant's slot or the keyspace.
    expect(await redis.ttl(keys.job(id))).toBeGreaterThan(0);
    expect(await redis.ttl(keys.events(id))).toBeGreaterThan(0);
    await kill(next);
  });

  it('ends the job of a run whose own failure write failed (its Redis connection died mid-run)', async () => {
    const image = Buffer.from('connection dies');
    const id = 'job_run_connection_dies';
    // The run's connection: it dies at the third token, before the run can write the failure.
    const runRedis = new Redis(TEST_REDIS_URL);
    const runStore = new JobStore(runRedis, keys, 60);
    const images = new ImageStore(runRedis, keys, 60);
    await store.create({ id, tenant: 'acme', model: 'fake-model', createdAt: Date.now() });
    await images.write(image);
    const engine: InferenceEngine = {
      info: { id: 'fake-model', revision: 'rev-1', dtype: 'fp32', device: 'cpu', dir: '/nowhere' },
      async generate(req: GenerateRequest): Promise<GenerateResult> {
        let i = 0;
        for (; i < req.params.maxTokens && !req.signal?.aborted; i++) {
          await new Promise((r) => setTimeout(r, 5));
          if (i === 2) runRedis.disconnect();
          req.onToken?.({ index: i, text: `t${i}` });
        }
        const timings = { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: 0, deviceMs: 0 };
        return { text: '', finishReason: req.signal?.aborted ? 'cancelled' : 'length', usage: { promptTokens: 1, completionTokens: i }, tokenIds: [], timings };
      },
    };
    const deps = { store: runStore, images, answers: new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60 }), engine, now: () => Date.now() };
    const worker = new Worker(
      poolQueue('fake-model'),
      (job) =>
        processInferenceJob(deps, InferenceJobDataSchema.parse(job.data), {
          attemptsMade: job.attemptsMade,
          maxAttempts: job.opts.attempts ?? 1,
          signal: new AbortController().signal,
          claim: job.attemptsStarted,
        }),
      { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() },
    );
    try {
      const data: InferenceJobData = {
        id,
        tenant: 'acme',
        model: 'fake-model',
        modelRevision: 'rev-1',
        image: { sha256: sha256Hex(image), bytes: image.length },
        question: 'q',
        params: { maxTokens: 400, temperature: 0, topP: 1, stop: [] },
        cacheKey: null,
        createdAt: Date.now(),
      };
      await queue.add(INFERENCE_JOB, data, { jobId: id, attempts: 1 });
      await waitFor('the record to end', async () => (await store.status(id)) === 'failed');
      const rec = await store.get(id);
      // The run could write neither its tokens nor its failure; the queue's failed reason carried the code.
      expect(rec?.error?.code).toBe('service_unavailable');
      expect(rec?.error?.message).toContain('Connection is closed');
      expect(rec?.attempt).toBe(1);
    } finally {
      await worker.close();
    }
  });

  it('ends a record once however many workers reconcile the same failure, and leaves an ended record alone', async () => {
    await store.create({ id: 'job_reconciled_twice', tenant: 'acme', model: 'm', createdAt: Date.now() });
    await store.start('job_reconciled_twice', Date.now(), 1);
    const a = new JobReconciler(store, () => Date.now());
    const b = new JobReconciler(store, () => Date.now());
    const outcomes = await Promise.all([a.failed('job_reconciled_twice', STALLED_LIMIT_REASON), b.failed('job_reconciled_twice', STALLED_LIMIT_REASON)]);
    expect(outcomes.filter((o) => o?.ok)).toHaveLength(1);
    const errors = (await redis.xrange(keys.events('job_reconciled_twice'), '-', '+')).filter(([, f]) => f[1]?.includes('"error"'));
    expect(errors).toHaveLength(1);
    await store.create({ id: 'job_already_done', tenant: 'acme', model: 'm', createdAt: Date.now() });
    await store.cancel('job_already_done', Date.now());
    expect(await a.completed('job_already_done')).toEqual({ ok: false, reason: 'rejected', current: 'cancelled' });
  });

  it("reads the worker's error code back from the queue's failed reason", () => {
    expect(failureFromReason(STALLED_LIMIT_REASON).code).toBe('worker_lost');
    expect(failureFromReason('timeout: no answer before the deadline')).toEqual({ code: 'timeout', message: 'no answer before the deadline' });
    expect(failureFromReason('invalid job data: bad')).toEqual({ code: 'internal', message: 'The queue failed the job: invalid job data: bad' });
    expect(failureFromReason(undefined).code).toBe('internal');
  });
});
