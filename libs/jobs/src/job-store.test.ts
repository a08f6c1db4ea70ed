import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type InferenceResult } from '@fastvlm/contracts';
import { EventHub } from './event-hub';
import { JobStore } from './job-store';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';

const result = (text: string): InferenceResult => ({
  text,
  finishReason: 'length',
  usage: { promptTokens: 3, completionTokens: 2 },
  model: 'm',
  finishedAt: 2000,
  timings: { queueMs: 1, inferenceMs: 2 },
});

describe('JobStore and EventHub on real Redis', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let sub: Redis;
  let store: JobStore;
  let hub: EventHub;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    sub = new Redis(TEST_REDIS_URL);
    store = new JobStore(redis, keys, 60);
    hub = new EventHub(sub, redis, keys);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    sub.disconnect();
  });

  const create = (id: string) => store.create({ id, tenant: 'acme', model: 'm', createdAt: 1000 });

  it('creates a job once and refuses a duplicate id', async () => {
    expect(await create('job_create_once')).toBe(true);
    expect(await create('job_create_once')).toBe(false);
    expect(await store.get('job_create_once')).toEqual({ id: 'job_create_once', tenant: 'acme', status: 'queued', model: 'm', createdAt: 1000 });
  });

  it('refreshes the TTL of the image a new job depends on, lists the job for its tenant, and reports a missing image', async () => {
    const image = keys.image('ab'.repeat(32));
    await redis.set(image, 'bytes', 'EX', 5);
    const job = { id: 'job_with_image', tenant: 'imgco', model: 'm', createdAt: 1000 };
    expect(await store.createWith(job, { key: image, ttlSeconds: 600 })).toEqual({ created: true, dependencyFound: true });
    expect(await redis.ttl(image)).toBeGreaterThan(500);
    expect(await redis.lrange(keys.tenantJobs('imgco'), 0, -1)).toEqual(['job_with_image']);
    const gone = keys.image('cd'.repeat(32));
    expect(await store.createWith({ ...job, id: 'job_image_gone' }, { key: gone, ttlSeconds: 600 })).toEqual({ created: true, dependencyFound: false });
    expect(await redis.exists(gone)).toBe(0);
    // A taken id changes nothing, not even the TTL of a live record.
    expect(await store.createWith(job, { key: job.id, ttlSeconds: 1 })).toEqual({ created: false, dependencyFound: false });
    expect(await redis.ttl(keys.job('job_with_image'))).toBe(-1);
  });

  it('stores a result exactly once even when two runs finish', async () => {
    await create('job_twice');
    expect((await store.start('job_twice', 1100)).ok).toBe(true);
    // A re-run after a crash claims the running job again.
    expect((await store.start('job_twice', 1200)).ok).toBe(true);
    expect(await store.succeed('job_twice', result('first'))).toEqual({ ok: true, from: 'running' });
    expect(await store.succeed('job_twice', result('second'))).toEqual({ ok: false, reason: 'rejected', current: 'succeeded' });
    const rec = await store.get('job_twice');
    expect(rec?.result?.text).toBe('first');
    const done = (await redis.xrange(keys.events('job_twice'), '-', '+')).filter(([, f]) => f[1]?.includes('"done"'));
    expect(done).toHaveLength(1);
    expect(await redis.ttl(keys.job('job_twice'))).toBeGreaterThan(0);
  });

  it('does not start, stream into or finish a cancelled job', async () => {
    await create('job_cancel');
    expect((await store.cancel('job_cancel', 1)).ok).toBe(true);
    expect(await store.start('job_cancel', 2)).toEqual({ ok: false, reason: 'rejected', current: 'cancelled' });
    expect(await store.appendToken('job_cancel', 0, 'x')).toBe(false);
    expect((await store.succeed('job_cancel', result('late'))).ok).toBe(false);
    expect((await store.get('job_cancel'))?.status).toBe('cancelled');
    expect(await store.start('job_missing', 1)).toEqual({ ok: false, reason: 'missing' });
  });

  it('delivers every event once and in order to a follower that joins mid-stream', async () => {
    await create('job_follow');
    await store.start('job_follow', 1);
    await store.appendToken('job_follow', 0, 'a');
    const seen: string[] = [];
    const following = (async () => {
      for await (const { event } of hub.follow('job_follow', '0')) seen.push(event.type === 'token' ? event.text : event.type === 'status' ? event.status : event.type);
    })();
    for (let i = 1; i < 20; i++) await store.appendToken('job_follow', i, String.fromCharCode(97 + i));
    await store.succeed('job_follow', result('done'));
    await following;
    expect(seen).toEqual(['queued', 'running', ...'abcdefghijklmnopqrst'.split(''), 'done']);
  });

  it('resumes after a given event id with only the later events', async () => {
    const all = await redis.xrange(keys.events('job_follow'), '-', '+');
    const after = all[5]?.[0] ?? '';
    const ids: string[] = [];
    for await (const { id } of hub.follow('job_follow', after)) ids.push(id);
    expect(ids).toEqual(all.slice(6).map(([id]) => id));
  });

  it('stops following when the signal aborts', async () => {
    await create('job_abort');
    const ctrl = new AbortController();
    const got: string[] = [];
    const following = (async () => {
      for await (const { event } of hub.follow('job_abort', '0', ctrl.signal)) {
        got.push(event.type);
        ctrl.abort();
      }
    })();
    await following;
    expect(got).toEqual(['status']);
  });
});
