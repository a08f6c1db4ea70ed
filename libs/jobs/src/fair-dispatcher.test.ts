import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type InferenceJobData } from '@fastvlm/contracts';
import { CLASS_PRIORITY, FairDispatcher } from './fair-dispatcher';
import { FairQueue } from './fair-queue';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from './test-redis';

/** Only what the dispatcher reads of a job; the worker never runs these. */
const job = (id: string, tenant: string): InferenceJobData => ({
  id,
  tenant,
  model: 'm',
  modelRevision: null,
  image: { sha256: 'a'.repeat(64), bytes: 1 },
  question: 'q',
  params: { maxTokens: 1, temperature: 0, topP: 1, stop: [] },
  cacheKey: null,
  createdAt: 0,
});

describe('FairDispatcher on real Redis and BullMQ', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  const opened: { close: () => Promise<void> }[] = [];
  let redis: Redis;
  let n = 0;
  const pool = (): { fair: FairQueue<InferenceJobData>; queue: Queue; name: string } => {
    const name = `pool-${n++}`;
    const queue = new Queue(name, { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    opened.push(queue);
    return { fair: new FairQueue<InferenceJobData>(redis, keys, name), queue, name };
  };
  const push = async (fair: FairQueue<InferenceJobData>, tenant: string, count: number, workClass: 'async' | 'batch' = 'async'): Promise<void> => {
    for (let i = 0; i < count; i++) await fair.push({ id: `${tenant}-${i}`, tenant, workClass, job: job(`${tenant}-${i}`, tenant) }, 1, 100_000);
  };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    for (const o of opened) await o.close();
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('tops the pool\'s queue up to its target, at its class\'s priority, and no further', async () => {
    const { fair, queue } = pool();
    await push(fair, 'acme', 10);
    const d = new FairDispatcher(fair, queue, { target: 4, ageMs: 60_000, intervalMs: 1_000 });
    expect(await d.tick(Date.now())).toEqual({ dispatched: 4, aged: 0 });
    expect(await d.tick(Date.now())).toEqual({ dispatched: 0, aged: 0 });
    const waiting = await queue.getPrioritized();
    expect(waiting.map((j) => j.id).sort()).toEqual(['acme-0', 'acme-1', 'acme-2', 'acme-3']);
    expect(new Set(waiting.map((j) => j.priority))).toEqual(new Set([CLASS_PRIORITY.async]));
    await queue.remove('acme-0');
    expect((await d.tick(Date.now())).dispatched).toBe(1);
    expect(await fair.depth()).toEqual({ async: 5, batch: 0 });
  });

  it('lets a worker take interactive work before the lower classes, and raises a lower-class job that waited too long', async () => {
    const { fair, queue, name } = pool();
    await push(fair, 'bulk', 3, 'batch');
    const d = new FairDispatcher(fair, queue, { target: 3, ageMs: 1_000, intervalMs: 1_000 });
    const t0 = Date.now();
    await d.tick(t0);
    await queue.add('chat', job('person-0', 'person'), { jobId: 'person-0', priority: CLASS_PRIORITY.interactive });
    // Nothing has waited a second yet: nothing is raised.
    expect((await d.tick(t0)).aged).toBe(0);
    // Later, the batch jobs have waited past the bound: raised behind the interactive job queued before them.
    expect((await d.tick(t0 + 5_000)).aged).toBe(3);
    const order: string[] = [];
    const worker = new Worker(name, (j) => Promise.resolve(void order.push(j.id ?? '')), { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull(), concurrency: 1 });
    opened.push(worker);
    const deadline = Date.now() + 10_000;
    while (order.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(order[0]).toBe('person-0');
    expect(order.slice(1).sort()).toEqual(['bulk-0', 'bulk-1', 'bulk-2']);
  });

  it('dispatches every job exactly once with two dispatchers racing on separate connections', async () => {
    const { fair, queue, name } = pool();
    await push(fair, 't1', 40);
    await push(fair, 't2', 40);
    const otherRedis = new Redis(TEST_REDIS_URL);
    const otherQueue = new Queue(name, { connection: new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull() });
    opened.push(otherQueue, { close: () => Promise.resolve(otherRedis.disconnect()) });
    const a = new FairDispatcher(fair, queue, { target: 100, ageMs: 60_000, intervalMs: 1_000 });
    const b = new FairDispatcher(new FairQueue<InferenceJobData>(otherRedis, keys, name), otherQueue, { target: 100, ageMs: 60_000, intervalMs: 1_000 });
    const [x, y] = await Promise.all([a.tick(Date.now()), b.tick(Date.now())]);
    expect(x.dispatched + y.dispatched).toBe(80);
    expect(await queue.getPrioritizedCount()).toBe(80);
    expect(await fair.depth()).toEqual({ async: 0, batch: 0 });
  });
});
