import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { JobQuota } from './job-quota';
import { LimitExceeded } from './limit-error';
import { WindowLimiter, type WindowLimit } from './request-limiter';
import type { TenantSettings } from './tenant-settings';
import { cleanupPrefix, testPrefix, testRedis } from './test-redis';

const S: TenantSettings = {
  requestsPerMinute: 100,
  keyRequestsPerMinute: 100,
  tokensPerMinute: 1_000,
  maxInFlightJobs: 3,
  maxQueuedJobs: 2,
  imageUrls: false,
  ipAllowlist: [],
  maxWorkClass: 'interactive',
  weight: 1,
  maxBacklogJobs: 100_000,
};

async function refusal(p: Promise<unknown>): Promise<LimitExceeded | null> {
  try {
    await p;
    return null;
  } catch (e) {
    if (e instanceof LimitExceeded) return e;
    throw e;
  }
}

describe('WindowLimiter', () => {
  const prefix = testPrefix();
  let redis: Redis;
  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('passes exactly max requests in a window, across many concurrent callers on separate connections', async () => {
    const clients = [testRedis(), testRedis(), testRedis()];
    const limit: WindowLimit = { name: 'tenant_requests', key: `${prefix}:rl:a`, cost: 1, max: 25, windowMs: 60_000 };
    const results = await Promise.all(Array.from({ length: 90 }, (_, i) => refusal(new WindowLimiter(clients[i % 3] as Redis).consume([limit]))));
    for (const c of clients) c.disconnect();
    expect(results.filter((r) => r === null)).toHaveLength(25);
    const refused = results.find((r) => r !== null);
    expect(refused?.code).toBe('rate_limited');
    expect(refused?.state).toMatchObject({ name: 'tenant_requests', limit: 25, remaining: 0 });
    expect(refused?.retryAfterMs).toBeGreaterThan(0);
    expect(refused?.retryAfterMs).toBeLessThanOrEqual(60_000);
  });

  it('is all-or-nothing: a request refused by one limit takes nothing from the others', async () => {
    const l = new WindowLimiter(redis);
    const key: WindowLimit = { name: 'key_requests', key: `${prefix}:rl:k`, cost: 1, max: 10, windowMs: 60_000 };
    const tenant: WindowLimit = { name: 'tenant_requests', key: `${prefix}:rl:t`, cost: 1, max: 2, windowMs: 60_000 };
    await l.consume([key, tenant]);
    await l.consume([key, tenant]);
    expect((await refusal(l.consume([key, tenant])))?.state.name).toBe('tenant_requests');
    expect(await redis.get(key.key)).toBe('2');
    const states = await l.consume([key]);
    expect(states[0]).toMatchObject({ name: 'key_requests', limit: 10, remaining: 7 });
  });

  it('starts a new window when the old one expires', async () => {
    const l = new WindowLimiter(redis);
    const short: WindowLimit = { name: 'key_requests', key: `${prefix}:rl:short`, cost: 1, max: 1, windowMs: 50 };
    await l.consume([short]);
    expect(await refusal(l.consume([short]))).not.toBeNull();
    await expect.poll(async () => (await refusal(l.consume([short]))) === null, { timeout: 2_000, interval: 10 }).toBe(true);
  });
});

describe('JobQuota', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let quota: JobQuota;
  const jobKey = (id: string) => `${prefix}:job:${id}`;
  beforeAll(() => {
    redis = testRedis();
    quota = new JobQuota(redis, prefix, jobKey, { graceMs: 50 });
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('reserves max_tokens per job, refuses past the window budget, and takes refunds', async () => {
    const s = { ...S, maxInFlightJobs: 100, maxQueuedJobs: 100 };
    const a = await quota.admit('tok', 'j1', 600, s, Date.now());
    expect(a.states[0]).toMatchObject({ name: 'tenant_tokens', remaining: 400 });
    const r = await refusal(quota.admit('tok', 'j2', 500, s, Date.now()));
    expect(r?.state).toMatchObject({ name: 'tenant_tokens', limit: 1_000, remaining: 400 });
    await quota.refundTokens(a.reservation, 600 - 100);
    expect((await quota.admit('tok', 'j3', 500, s, Date.now())).states[0]?.remaining).toBe(400);
  });

  it('refuses a max_tokens larger than the whole budget as a bad request naming max_tokens', async () => {
    const e = await quota.admit('tok2', 'j', 5_000, S, Date.now()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AppError);
    expect(e).toMatchObject({ code: 'invalid_request', param: 'max_tokens' });
  });

  it('caps queued and in-flight jobs, and frees slots of jobs that finished without anyone telling it', async () => {
    const clock = { now: Date.now() };
    const admit = (id: string) => quota.admit('cap', id, 1, S, clock.now);
    await admit('q1');
    await redis.hset(jobKey('q1'), 'status', 'queued');
    await admit('q2');
    await redis.hset(jobKey('q2'), 'status', 'queued');
    expect((await refusal(admit('q3')))?.state.name).toBe('tenant_queued');
    await redis.hset(jobKey('q1'), 'status', 'running');
    await admit('q3');
    await redis.hset(jobKey('q3'), 'status', 'running');
    expect((await refusal(admit('q4')))?.state.name).toBe('tenant_in_flight');
    await redis.hset(jobKey('q3'), 'status', 'succeeded');
    await redis.del(jobKey('q1'));
    // Past the grace period, a member without a record is an expired job, not one being written.
    clock.now += 1_000;
    await admit('q5');
    expect(await redis.zrange(quota.jobsKey('cap'), '0', '-1')).toEqual(['q2', 'q5']);
  });

  it('admits exactly the cap of jobs that arrive together, and no more tokens than the budget', async () => {
    const s = { ...S, maxInFlightJobs: 4, maxQueuedJobs: 4, tokensPerMinute: 1_000 };
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => refusal(quota.admit('burst', `b${i}`, 100, s, Date.now()))));
    expect(burst.map((r) => r?.state.name ?? 'admitted')).toEqual([...Array<string>(4).fill('admitted'), ...Array<string>(8).fill('tenant_in_flight')]);
    expect(await redis.zcard(quota.jobsKey('burst'))).toBe(4);
    const tokens = await Promise.all(Array.from({ length: 12 }, (_, i) => refusal(quota.admit('burst-tokens', `t${i}`, 300, { ...s, maxInFlightJobs: 99, maxQueuedJobs: 99 }, Date.now()))));
    expect(tokens.map((r) => r?.state.name ?? 'admitted')).toEqual([...Array<string>(3).fill('admitted'), ...Array<string>(9).fill('tenant_tokens')]);
  });

  it('counts a reserved job whose record is not written yet, for a grace period only', async () => {
    const now = Date.now();
    const s = { ...S, maxInFlightJobs: 1, maxQueuedJobs: 1 };
    await quota.admit('grace', 'g1', 1, s, now);
    expect((await refusal(quota.admit('grace', 'g2', 1, s, now)))?.state.name).toBe('tenant_in_flight');
    await quota.admit('grace', 'g3', 1, s, now + 100);
  });

  it('releases a slot at once', async () => {
    const s = { ...S, maxInFlightJobs: 1, maxQueuedJobs: 1 };
    const { reservation } = await quota.admit('rel', 'r1', 1, s, Date.now());
    await quota.releaseSlot(reservation);
    await quota.admit('rel', 'r2', 1, s, Date.now());
  });
});
