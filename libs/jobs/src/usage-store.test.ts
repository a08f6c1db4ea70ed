import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';
import { TooMuchUsage, UsageStore, emptyTotals, groupUsage, hourOf, type UsageEntry, type UsageTotals } from './usage-store';

const H = 3_600;
/** 22:00 UTC yesterday, two hours before a day ends, so that hours of two days are read (and recent: keys expire at hour + retention). */
const T0 = Math.floor(Date.now() / 86_400_000) * 86_400 - 2 * 3_600;
const RETENTION_DAYS = 400;

const entry = (e: Partial<UsageEntry>): UsageEntry => ({
  tenant: 'acme',
  model: 'org/model@rev',
  workClass: 'interactive',
  outcome: 'succeeded',
  at: T0 * 1000,
  deviceMs: 1,
  promptTokens: 0,
  completionTokens: 0,
  images: 1,
  ...e,
});
const totals = (t: Partial<UsageTotals>): UsageTotals => ({ ...emptyTotals(), ...t });

describe('UsageStore on real Redis', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: UsageStore;

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    store = new UsageStore(redis, keys, { retentionDays: RETENTION_DAYS });
    const rec = (e: Partial<UsageEntry>) => store.record(entry(e));
    // acme, hour 0 (22:00): two interactive jobs of one model, a failed and a cancelled one, an async one, another model.
    await rec({ deviceMs: 12.345, promptTokens: 300, completionTokens: 16, at: T0 * 1000 });
    await rec({ deviceMs: 0.5, promptTokens: 301, completionTokens: 4, at: (T0 + H) * 1000 - 1 });
    await rec({ outcome: 'failed', deviceMs: 7.001, images: 1 });
    await rec({ outcome: 'cancelled', deviceMs: 2, promptTokens: 290, completionTokens: 3 });
    await rec({ workClass: 'async', deviceMs: 100, promptTokens: 10, completionTokens: 20 });
    await rec({ model: 'other|model', deviceMs: 3, promptTokens: 1, completionTokens: 2 });
    // acme, hour 1 (23:00) and hour 2 (00:00 the next day); globex in hour 0.
    await rec({ deviceMs: 40, promptTokens: 5, completionTokens: 6, at: (T0 + H) * 1000 });
    await rec({ deviceMs: 50, promptTokens: 7, completionTokens: 8, at: (T0 + 2 * H) * 1000 + 59_999 });
    await rec({ tenant: 'globex', deviceMs: 9, promptTokens: 9, completionTokens: 9 });
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('keeps one hash per tenant and hour, with integer fields per model, class and metric', async () => {
    expect(await redis.hgetall(keys.usage('acme', T0))).toEqual({
      'org/model@rev|interactive|jobs': '4',
      'org/model@rev|interactive|failed_jobs': '1',
      'org/model@rev|interactive|cancelled_jobs': '1',
      'org/model@rev|interactive|device_us': String(12_345 + 500 + 7_001 + 2_000),
      'org/model@rev|interactive|prompt_tokens': String(300 + 301 + 290),
      'org/model@rev|interactive|completion_tokens': String(16 + 4 + 3),
      'org/model@rev|interactive|images': '4',
      'org/model@rev|async|jobs': '1',
      'org/model@rev|async|device_us': '100000',
      'org/model@rev|async|prompt_tokens': '10',
      'org/model@rev|async|completion_tokens': '20',
      'org/model@rev|async|images': '1',
      'other|model|interactive|jobs': '1',
      'other|model|interactive|device_us': '3000',
      'other|model|interactive|prompt_tokens': '1',
      'other|model|interactive|completion_tokens': '2',
      'other|model|interactive|images': '1',
    });
    expect(hourOf((T0 + H) * 1000 - 1)).toBe(T0);
    expect(hourOf((T0 + H) * 1000)).toBe(T0 + H);
  });

  it("expires each hour's hash and tenant index at the hour's start plus the retention", async () => {
    for (const [key, hour] of [
      [keys.usage('acme', T0), T0],
      [keys.usage('acme', T0 + 2 * H), T0 + 2 * H],
      [keys.usageTenants(T0 + H), T0 + H],
    ] as const) {
      expect(await redis.call('EXPIRETIME', key)).toBe(hour + RETENTION_DAYS * 86_400);
    }
    expect((await redis.smembers(keys.usageTenants(T0))).sort()).toEqual(['acme', 'globex']);
    expect(await redis.smembers(keys.usageTenants(T0 + H))).toEqual(['acme']);
  });

  it("reads a tenant's cells in [from, to) and sums them by hour, by UTC day cut to the range, and by model and class", async () => {
    const cells = await store.read({ tenant: 'acme', fromHour: T0, toHour: T0 + 3 * H });
    expect(cells).toHaveLength(5);
    const hourly = groupUsage(cells, { bucket: 'hour', model: false, workClass: false }, T0, T0 + 3 * H);
    expect(hourly).toEqual([
      {
        tenant: 'acme',
        start: T0,
        end: T0 + H,
        totals: totals({ jobs: 6, failedJobs: 1, cancelledJobs: 1, deviceUs: 124_846, promptTokens: 902, completionTokens: 45, images: 6 }),
      },
      { tenant: 'acme', start: T0 + H, end: T0 + 2 * H, totals: totals({ jobs: 1, deviceUs: 40_000, promptTokens: 5, completionTokens: 6, images: 1 }) },
      { tenant: 'acme', start: T0 + 2 * H, end: T0 + 3 * H, totals: totals({ jobs: 1, deviceUs: 50_000, promptTokens: 7, completionTokens: 8, images: 1 }) },
    ]);
    // The first day's bucket starts at the range's start (22:00), the second ends at its end (01:00).
    const daily = groupUsage(cells, { bucket: 'day', model: false, workClass: false }, T0, T0 + 3 * H);
    expect(daily.map((r) => [r.start, r.end, r.totals.jobs, r.totals.deviceUs])).toEqual([
      [T0, T0 + 2 * H, 7, 164_846],
      [T0 + 2 * H, T0 + 3 * H, 1, 50_000],
    ]);
    const byModel = groupUsage(cells, { bucket: null, model: true, workClass: false }, T0, T0 + 3 * H);
    expect(byModel.map((r) => [r.start, r.end, r.model, r.totals.jobs, r.totals.deviceUs, r.totals.completionTokens])).toEqual([
      [T0, T0 + 3 * H, 'org/model@rev', 7, 211_846, 16 + 4 + 3 + 20 + 6 + 8],
      [T0, T0 + 3 * H, 'other|model', 1, 3_000, 2],
    ]);
    const byClass = groupUsage(cells, { bucket: null, model: false, workClass: true }, T0, T0 + 3 * H);
    expect(byClass.map((r) => [r.workClass, r.totals.jobs])).toEqual([
      ['async', 1],
      ['interactive', 7],
    ]);
    // A range that starts an hour later leaves hour 0 out.
    const later = await store.read({ tenant: 'acme', fromHour: T0 + H, toHour: T0 + 2 * H });
    expect(groupUsage(later, { bucket: null, model: false, workClass: false }, T0 + H, T0 + 2 * H).map((r) => r.totals.jobs)).toEqual([1]);
  });

  it('reads every tenant through the hourly index, and refuses a read of more tenant-hours than allowed', async () => {
    const cells = await store.read({ fromHour: T0, toHour: T0 + 3 * H, maxKeys: 4 });
    const rows = groupUsage(cells, { bucket: null, model: false, workClass: false }, T0, T0 + 3 * H);
    expect(rows.map((r) => [r.tenant, r.totals.jobs, r.totals.deviceUs])).toEqual([
      ['acme', 8, 214_846],
      ['globex', 1, 9_000],
    ]);
    // acme in three hours and globex in one: four hashes.
    await expect(store.read({ fromHour: T0, toHour: T0 + 3 * H, maxKeys: 3 })).rejects.toBeInstanceOf(TooMuchUsage);
    expect(await store.read({ tenant: 'nobody', fromHour: T0, toHour: T0 + 3 * H })).toEqual([]);
  });
});
