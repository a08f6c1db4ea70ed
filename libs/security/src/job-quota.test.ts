import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JobQuota } from './job-quota';
import { LimitExceeded } from './limit-error';
import type { TenantSettings } from './tenant-settings';
import { cleanupPrefix, testPrefix, testRedis } from './test-redis';

const S: TenantSettings = {
  requestsPerMinute: 100,
  keyRequestsPerMinute: 100,
  tokensPerMinute: 1_000,
  maxInFlightJobs: 1,
  maxQueuedJobs: 1,
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

describe('JobQuota under faults', () => {
  const prefix = testPrefix();
  let redis: Redis;
  const jobKey = (id: string): string => `${prefix}:job:${id}`;
  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('frees the slot of a job whose record is past its deadline, whatever its status says', async () => {
    const quota = new JobQuota(redis, prefix, jobKey, { graceMs: 50 });
    const now = Date.now();
    await quota.admit('dead', 'd1', 1, S, now);
    // A job whose worker died for good: still `running`, but its deadline has passed.
    await redis.hset(jobKey('d1'), 'status', 'running', 'deadline', now - 1_000);
    await quota.admit('dead', 'd2', 1, S, now);
    expect(await redis.zrange(quota.jobsKey('dead'), '0', '-1')).toEqual(['d2']);
  });

  it('still counts a running job whose deadline is ahead', async () => {
    const quota = new JobQuota(redis, prefix, jobKey, { graceMs: 50 });
    const now = Date.now();
    await quota.admit('alive', 'a1', 1, S, now);
    await redis.hset(jobKey('a1'), 'status', 'running', 'deadline', now + 60_000);
    expect((await refusal(quota.admit('alive', 'a2', 1, S, now)))?.state.name).toBe('tenant_in_flight');
  });

  it('drops a refund that arrives after the window its tokens were reserved in', async () => {
    const quota = new JobQuota(redis, prefix, jobKey, { windowMs: 150 });
    const s = { ...S, maxInFlightJobs: 99, maxQueuedJobs: 99 };
    const long = await quota.admit('win', 'w1', 995, s, Date.now());
    await until('the first window to end', async () => (await redis.exists(quota.tokensKey('win'))) === 0);
    // A new window opens at a fresh budget; a long job of the old window now answers and refunds 995 - 0.
    await quota.admit('win', 'w2', 1_000, s, Date.now());
    await quota.refundTokens(long.reservation, 995);
    const r = await refusal(quota.admit('win', 'w3', 1_000, s, Date.now()));
    expect(r?.state).toMatchObject({ name: 'tenant_tokens', limit: 1_000, remaining: 0 });
  });

  it('takes a refund within the window the tokens were reserved in', async () => {
    const quota = new JobQuota(redis, prefix, jobKey, { windowMs: 60_000 });
    const s = { ...S, maxInFlightJobs: 99, maxQueuedJobs: 99 };
    const a = await quota.admit('same', 's1', 800, s, Date.now());
    await quota.refundTokens(a.reservation, 700);
    expect((await quota.admit('same', 's2', 900, s, Date.now())).states[0]).toMatchObject({ name: 'tenant_tokens', remaining: 0 });
  });
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
