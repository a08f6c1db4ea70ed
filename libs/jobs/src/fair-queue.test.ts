import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { FairQueue, type BacklogClass, type FairEntry } from './fair-queue';
import { cleanupPrefix, TEST_REDIS_URL, testPrefix } from './test-redis';

type Job = { n: number };

describe('FairQueue on real Redis', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let other: Redis;
  let queues = 0;
  let cap = 100_000;
  const fresh = (opts: { leaseMs?: number; batchEvery?: number } = {}, on?: Redis): FairQueue<Job> => new FairQueue<Job>(on ?? redis, keys, `pool-${queues++}`, opts);
  const entry = (tenant: string, n: number, workClass: BacklogClass = 'async'): FairEntry<Job> => ({ id: `${tenant}-${n}`, tenant, workClass, job: { n } });
  const pushAll = async (q: FairQueue<Job>, tenant: string, count: number, weight = 1, workClass: BacklogClass = 'async'): Promise<void> => {
    for (let i = 0; i < count; i++) await q.push(entry(tenant, i, workClass), weight, cap);
  };
  const drain = async (q: FairQueue<Job>, n: number, per = 4): Promise<FairEntry<Job>[]> => {
    const out: FairEntry<Job>[] = [];
    while (out.length < n) {
      const got = await q.claim(Math.min(per, n - out.length), 1_000);
      if (got.length === 0) break;
      await q.confirm(got.map((e) => e.id));
      out.push(...got);
    }
    return out;
  };

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    other = new Redis(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    other.disconnect();
  });

  it('starts a small tenant\'s jobs within one round behind a flood: after its arrival the two alternate', async () => {
    const q = fresh();
    await pushAll(q, 'flood', 500);
    // The workers took a few rounds of the flood before the small tenant arrived.
    expect((await drain(q, 12)).map((e) => e.tenant)).toEqual(Array.from({ length: 12 }, () => 'flood'));
    await pushAll(q, 'small', 10);
    const next = await drain(q, 20);
    expect(next.map((e) => e.tenant)).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? 'flood' : 'small')));
    expect(next.filter((e) => e.tenant === 'small').map((e) => e.job.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await q.depth()).toEqual({ async: 500 - 12 - 10, batch: 0 });
  });

  it('shares in proportion to the tenants\' weights', async () => {
    const q = fresh();
    await pushAll(q, 'heavy', 40, 2);
    await pushAll(q, 'light', 40, 1);
    const first = await drain(q, 30);
    expect(first.filter((e) => e.tenant === 'heavy')).toHaveLength(20);
    expect(first.filter((e) => e.tenant === 'light')).toHaveLength(10);
  });

  it('refuses a tenant past its cap, and takes its jobs again once some have left', async () => {
    const q = fresh();
    cap = 3;
    try {
      await pushAll(q, 'capped', 3);
      expect(await q.push(entry('capped', 3), 1, cap)).toEqual({ accepted: false, held: 3 });
      expect(await q.heldBy('capped')).toBe(3);
      expect(await q.push(entry('someone-else', 0), 1, cap)).toEqual({ accepted: true, held: 1 });
      await drain(q, 2);
      expect(await q.push(entry('capped', 3), 1, cap)).toMatchObject({ accepted: true });
    } finally {
      cap = 100_000;
    }
  });

  it('gives a dead dispatcher\'s claim to the next one once its lease lapses, and forgets a job only when confirmed', async () => {
    const q = fresh({ leaseMs: 100 });
    await pushAll(q, 'acme', 3);
    const lost = await q.claim(2, 1_000);
    expect(lost.map((e) => e.id)).toEqual(['acme-0', 'acme-1']);
    // Within the lease nobody else gets them.
    expect((await q.claim(5, 1_050)).map((e) => e.id)).toEqual(['acme-2']);
    // The first dispatcher died: after its lease, its jobs come back (and only those whose lease lapsed).
    const again = await q.claim(5, 1_101);
    expect(again.map((e) => e.id)).toEqual(['acme-0', 'acme-1']);
    expect(await q.holds('acme-0')).toBe(true);
    await q.confirm(again.map((e) => e.id));
    expect(await q.holds('acme-0')).toBe(false);
    // The second claim was never confirmed either.
    expect((await q.claim(5, 1_151)).map((e) => e.id)).toEqual(['acme-2']);
    await q.confirm(['acme-2']);
    expect(await q.claim(5, 10_000)).toEqual([]);
  });

  it('never hands one job to two dispatchers racing on separate connections', async () => {
    const a = fresh();
    const b = new FairQueue<Job>(other, keys, `pool-${queues - 1}`);
    await Promise.all([pushAll(a, 't1', 60), pushAll(a, 't2', 60)]);
    const take = async (q: FairQueue<Job>): Promise<string[]> => {
      const got: string[] = [];
      for (;;) {
        const batch = await q.claim(3, 1_000);
        if (batch.length === 0) return got;
        await q.confirm(batch.map((e) => e.id));
        got.push(...batch.map((e) => e.id));
      }
    };
    const [x, y] = await Promise.all([take(a), take(b)]);
    expect(x.length).toBeGreaterThan(0);
    expect(y.length).toBeGreaterThan(0);
    expect([...x, ...y].sort()).toEqual([...Array.from({ length: 60 }, (_, i) => `t1-${i}`), ...Array.from({ length: 60 }, (_, i) => `t2-${i}`)].sort());
  });

  it('serves batch work a fixed share while async work waits, so neither class starves', async () => {
    const q = fresh({ batchEvery: 5 });
    await pushAll(q, 'bulk', 20, 1, 'batch');
    await pushAll(q, 'jobs', 20, 1, 'async');
    const first = await drain(q, 20);
    expect(first.filter((e) => e.workClass === 'batch')).toHaveLength(4);
    expect(first.filter((e) => e.workClass === 'async')).toHaveLength(16);
  });
});
