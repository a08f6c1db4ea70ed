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
    // A taken id changes nothing of the live job (its record, its TTL), and the job is still listed once
    // (first again: the list is written before the record is checked, in another slot).
    await store.start(job.id, 2000);
    const before = await store.get(job.id);
    expect(await store.createWith({ ...job, createdAt: 3000 }, { key: image, ttlSeconds: 600 })).toEqual({ created: false, dependencyFound: true });
    expect(await store.get(job.id)).toEqual(before);
    expect(await redis.ttl(keys.job('job_with_image'))).toBeGreaterThan(50);
    expect((await store.recent('imgco', 10)).map((r) => r.id)).toEqual(['job_with_image', 'job_image_gone']);
  });

  it('stores a result exactly once even when two runs finish', async () => {
    await create('job_twice');
    const first = await store.start('job_twice', 1100, 1);
    expect(first).toEqual({ ok: true, from: 'queued', attempt: 1 });
    // A re-run after a crash claims the running job again, with a newer claim.
    expect(await store.start('job_twice', 1200, 2)).toEqual({ ok: true, from: 'running', attempt: 2 });
    expect(await store.succeed('job_twice', result('second'), 2)).toEqual({ ok: true, from: 'running' });
    expect(await store.succeed('job_twice', result('first'), 2)).toEqual({ ok: false, reason: 'rejected', current: 'succeeded' });
    const rec = await store.get('job_twice');
    expect(rec?.result?.text).toBe('second');
    expect(rec?.attempt).toBe(2);
    const done = (await redis.xrange(keys.events('job_twice'), '-', '+')).filter(([, f]) => f[1]?.includes('"done"'));
    expect(done).toHaveLength(1);
    expect(await redis.ttl(keys.job('job_twice'))).toBeGreaterThan(0);
  });

  it('refuses every write of a run that lost its claim, while the run that replaced it writes', async () => {
    await create('job_fenced');
    expect(await store.start('job_fenced', 1100, 1)).toMatchObject({ ok: true, attempt: 1 });
    expect(await store.appendToken('job_fenced', 0, 'a', 1)).toBe(true);
    // Run 1 pauses past its lock; run 2 claims the job.
    expect(await store.start('job_fenced', 1200, 2)).toMatchObject({ ok: true, attempt: 2 });
    expect(await store.appendToken('job_fenced', 1, 'stale', 1)).toBe(false);
    expect(await store.appendToken('job_fenced', 0, 'b', 2)).toBe(true);
    expect(await store.succeed('job_fenced', result('stale'), 1)).toEqual({ ok: false, reason: 'superseded', current: 'running' });
    expect(await store.requeue('job_fenced', 1)).toEqual({ ok: false, reason: 'superseded', current: 'running' });
    expect(await store.fail('job_fenced', { code: 'internal', message: 'stale' }, 1300, 1)).toEqual({ ok: false, reason: 'superseded', current: 'running' });
    // A run that lost its claim before it started cannot take the job back.
    expect(await store.start('job_fenced', 1300, 2)).toEqual({ ok: false, reason: 'superseded', current: 'running' });
    expect(await store.succeed('job_fenced', result('current'), 2)).toEqual({ ok: true, from: 'running' });
    const events = (await redis.xrange(keys.events('job_fenced'), '-', '+')).map(([, f]) => JSON.parse(f[1] ?? '{}') as unknown);
    expect(events).toEqual([
      { type: 'status', status: 'queued' },
      { type: 'status', status: 'running' },
      { type: 'token', index: 0, text: 'a', attempt: 1 },
      { type: 'status', status: 'running' },
      { type: 'token', index: 0, text: 'b', attempt: 2 },
      { type: 'done', result: result('current') },
    ]);
  });

  it('gives a new record and its events a TTL of the deadline plus the job TTL, and keeps the deadline', async () => {
    const now = Date.now();
    await store.create({ id: 'job_ttl_deadline', tenant: 'acme', model: 'm', createdAt: now, deadline: now + 300_000 });
    await create('job_ttl_plain');
    // 300 s to the deadline, then the store's 60 s.
    for (const key of [keys.job('job_ttl_deadline'), keys.events('job_ttl_deadline')]) {
      expect(await redis.ttl(key)).toBeGreaterThan(355);
      expect(await redis.ttl(key)).toBeLessThanOrEqual(360);
    }
    expect((await store.get('job_ttl_deadline'))?.deadline).toBe(now + 300_000);
    for (const key of [keys.job('job_ttl_plain'), keys.events('job_ttl_plain')]) {
      expect(await redis.ttl(key)).toBeGreaterThan(55);
      expect(await redis.ttl(key)).toBeLessThanOrEqual(60);
    }
    // Starting keeps it; ending sets the finished TTL.
    await store.start('job_ttl_deadline', now, 1);
    expect(await redis.ttl(keys.job('job_ttl_deadline'))).toBeGreaterThan(355);
    await store.fail('job_ttl_deadline', { code: 'timeout', message: 'late' }, now, 1);
    expect(await redis.ttl(keys.job('job_ttl_deadline'))).toBeLessThanOrEqual(60);
  });

  it('indexes a job as pending from creation until it is claimed or ends, and discards it with its record', async () => {
    for (const id of ['job_p_claimed', 'job_p_cancelled', 'job_p_open', 'job_p_discarded']) await create(id);
    await store.start('job_p_claimed', 1100, 1);
    await store.cancel('job_p_cancelled', 1100);
    await store.discard('job_p_discarded');
    const pending = await redis.zrange(keys.pendingJobs(), '0', '-1');
    expect(pending.filter((id) => id.startsWith('job_p_'))).toEqual(['job_p_open']);
    expect(await redis.exists(keys.job('job_p_discarded'), keys.events('job_p_discarded'))).toBe(0);
  });

  it('does not start, stream into or finish a cancelled job', async () => {
    await create('job_cancel');
    expect((await store.cancel('job_cancel', 1)).ok).toBe(true);
    expect(await store.start('job_cancel', 2, 1)).toEqual({ ok: false, reason: 'rejected', current: 'cancelled' });
    expect(await store.appendToken('job_cancel', 0, 'x', 1)).toBe(false);
    expect((await store.succeed('job_cancel', result('late'), 1)).ok).toBe(false);
    expect((await store.get('job_cancel'))?.status).toBe('cancelled');
    expect(await store.start('job_missing', 1, 1)).toEqual({ ok: false, reason: 'missing' });
  });

  it('delivers every event once and in order to a follower that joins mid-stream', async () => {
    await create('job_follow');
    await store.start('job_follow', 1, 1);
    await store.appendToken('job_follow', 0, 'a', 1);
    const seen: string[] = [];
    const following = (async () => {
      for await (const { event } of hub.follow('job_follow', '0')) seen.push(event.type === 'token' ? event.text : event.type === 'status' ? event.status : event.type);
    })();
    for (let i = 1; i < 20; i++) await store.appendToken('job_follow', i, String.fromCharCode(97 + i), 1);
    await store.succeed('job_follow', result('done'), 1);
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
