import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog, type AuditEvent } from './audit-log';
import { TenantSettingsStore, type TenantSettings } from './tenant-settings';
import { cleanupPrefix, testPrefix, testRedis } from './test-redis';

describe('AuditLog', () => {
  const prefix = testPrefix();
  let redis: Redis;
  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('keeps events newest first, filters by type and tenant, pages back, and mirrors them to the log sink', async () => {
    const sunk: AuditEvent[] = [];
    const log = new AuditLog(redis, `${prefix}:a`, { sink: (e) => sunk.push(e) });
    for (let i = 0; i < 5; i++) await log.record({ type: 'limit_hit', limit: 'tenant_requests', tenant: i % 2 ? 'acme' : 'globex', keyId: `k${i}` });
    await log.record({ type: 'auth_failed', reason: 'unknown_key', ip: '10.0.0.1', route: 'POST /v1/jobs' });
    expect(sunk).toHaveLength(6);
    const all = await log.read({ limit: 10 });
    expect(all.map((e) => e.event.type)).toEqual(['auth_failed', 'limit_hit', 'limit_hit', 'limit_hit', 'limit_hit', 'limit_hit']);
    expect((await log.read({ limit: 10, type: 'limit_hit', tenant: 'acme' })).map((e) => (e.event.type === 'limit_hit' ? e.event.keyId : ''))).toEqual(['k3', 'k1']);
    const page = await log.read({ limit: 2 });
    const next = await log.read({ limit: 2, before: page.at(-1)?.id ?? '' });
    expect(next.map((e) => e.id)).toEqual(all.slice(2, 4).map((e) => e.id));
  });

  it('bounds retention by count and by age', async () => {
    const log = new AuditLog(redis, `${prefix}:b`, { maxEntries: 100 });
    for (let i = 0; i < 1_000; i++) log.emit({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
    await log.record({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
    // Trimming is approximate (whole stream nodes): bounded, not exact.
    expect(await redis.xlen(log.key())).toBeLessThanOrEqual(300);

    const aged = new AuditLog(redis, `${prefix}:c`, { maxAgeMs: 100 });
    for (let i = 0; i < 250; i++) aged.emit({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
    await aged.record({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
    const firstBatchEnd = Date.now();
    await expect
      .poll(async () => {
        await aged.record({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
        const oldest = (await redis.xrange(aged.key(), '-', '+', 'COUNT', 1))[0]?.[0] ?? '0-0';
        return Number(oldest.split('-')[0]) > firstBatchEnd - 100 || (await redis.xlen(aged.key())) < 200;
      }, { timeout: 5_000, interval: 20 })
      .toBe(true);
  });

  it('does not fail the caller when Redis refuses the write', async () => {
    const errors: unknown[] = [];
    const broken = testRedis();
    broken.disconnect();
    const log = new AuditLog(broken, prefix, { onError: (e) => errors.push(e) });
    await log.record({ type: 'auth_failed', reason: 'missing', ip: '1.2.3.4', route: 'x' });
    expect(errors).toHaveLength(1);
  });
});

describe('TenantSettingsStore', () => {
  const prefix = testPrefix();
  let redis: Redis;
  const defaults: TenantSettings = { requestsPerMinute: 10, keyRequestsPerMinute: 5, tokensPerMinute: 100, maxInFlightJobs: 2, maxQueuedJobs: 2, imageUrls: false, ipAllowlist: [], maxWorkClass: 'interactive', weight: 1, maxBacklogJobs: 100 };
  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('merges overrides over defaults; null returns a field to its default', async () => {
    const t = new TenantSettingsStore(redis, prefix, defaults);
    expect((await t.get('acme')).settings).toEqual(defaults);
    await t.patch('acme', { imageUrls: true, requestsPerMinute: 99, ipAllowlist: ['10.0.0.0/8'] });
    expect((await t.get('acme')).settings).toMatchObject({ imageUrls: true, requestsPerMinute: 99, keyRequestsPerMinute: 5, ipAllowlist: ['10.0.0.0/8'] });
    const after = await t.patch('acme', { requestsPerMinute: null });
    expect(after.overrides).toEqual({ imageUrls: true, ipAllowlist: ['10.0.0.0/8'] });
    expect(after.settings.requestsPerMinute).toBe(10);
  });

  it('refuses unknown fields, bad values, bad CIDRs and bad tenant names, naming the field', async () => {
    const t = new TenantSettingsStore(redis, prefix, defaults);
    await expect(t.patch('acme', { rpm: 3 })).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(t.patch('acme', { maxInFlightJobs: 0 })).rejects.toMatchObject({ param: 'maxInFlightJobs' });
    await expect(t.patch('acme', { ipAllowlist: ['nope'] })).rejects.toMatchObject({ param: 'ipAllowlist' });
    await expect(t.get('../etc')).rejects.toMatchObject({ param: 'tenant' });
  });
});
