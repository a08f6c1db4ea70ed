import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { BootstrapKeys } from './api-keys';
import { AuthError, Authenticator, type AdmitPlan } from './authenticator';
import { ApiKeyStore } from './key-store';
import { LimitExceeded } from './limit-error';
import { WindowLimiter } from './request-limiter';
import { TenantSettingsStore } from './tenant-settings';
import { cleanupPrefix, TEST_TENANT_DEFAULTS, testPrefix, testRedis } from './test-redis';

const DEFAULTS = TEST_TENANT_DEFAULTS;

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'admitted';
  } catch (e) {
    if (e instanceof AuthError) return e.reason;
    if (e instanceof LimitExceeded) return e.state.name;
    if (e instanceof AppError) return e.code;
    throw e;
  }
}

describe('Authenticator.admit: authentication and request limits in one step', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let store: ApiKeyStore;
  let settings: TenantSettingsStore;
  let limiter: WindowLimiter;
  const pod = () => new Authenticator(store, new BootstrapKeys(''), { defaults: DEFAULTS, tenantSettingsJson: (t) => redis.get(settings.key(t)) });
  /** Per-key limit from the tenant's settings, and a refusal for callers whose allowlist names 10.0.0.1. */
  const plan = (counter: string): AdmitPlan => ({
    check: (p) => {
      if (p.settings.ipAllowlist.includes('10.0.0.1')) throw new AppError('forbidden', 'not from here');
    },
    limits: (p) => [{ name: 'key_requests', key: `${prefix}:rl:${counter}:${p.keyId}`, cost: 1, max: p.settings.keyRequestsPerMinute, windowMs: 60_000 }],
  });

  beforeAll(() => {
    redis = testRedis();
    store = new ApiKeyStore(redis, prefix);
    settings = new TenantSettingsStore(redis, prefix, DEFAULTS);
    limiter = new WindowLimiter(redis);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('admits a known key with a single Redis command per request', async () => {
    const { key, record } = await store.create({ tenant: 'solo', name: 'k', scopes: ['infer'], now: 1 });
    const a = pod();
    const first = await a.admit(`Bearer ${key}`, limiter, plan('one'));
    expect(first.principal).toMatchObject({ tenant: 'solo', keyId: record.id, scopes: ['infer'] });
    expect(first.limits[0]).toMatchObject({ name: 'key_requests', limit: 50, remaining: 49 });
    // The first use records last_used_at in the background (loading its script on a fresh Redis takes a
    // second round trip); let it land, so that only the second request's commands are counted.
    const deadline = Date.now() + 5_000;
    while ((await store.get(record.id))?.lastUsedAt === null) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the first use to be recorded');
      await new Promise((r) => setTimeout(r, 10));
    }
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      const second = await a.admit(`Bearer ${key}`, limiter, plan('one'));
      expect(second.limits[0]?.remaining).toBe(48);
      expect(sent.mock.calls.map(([c]) => c.name)).toEqual(['evalsha']);
    } finally {
      sent.mockRestore();
    }
  });

  it('refuses a key revoked after this process remembered it, on the next request', async () => {
    const { key, record } = await store.create({ tenant: 'acme', name: 'k', scopes: ['infer'], now: 1 });
    const podA = pod();
    const podB = pod();
    expect(await outcome(podA.admit(`Bearer ${key}`, limiter, plan('rev')))).toBe('admitted');
    expect(await outcome(podB.admit(`Bearer ${key}`, limiter, plan('rev')))).toBe('admitted');
    await store.revoke(record.id, 2);
    expect(await outcome(podA.admit(`Bearer ${key}`, limiter, plan('rev')))).toBe('revoked');
    expect(await outcome(podB.admit(`Bearer ${key}`, limiter, plan('rev')))).toBe('revoked');
    // The refused requests took nothing from the limit.
    expect(await redis.get(`${prefix}:rl:rev:${record.id}`)).toBe('2');
  });

  it('applies a tenant settings change to the next request of a process that remembered the old ones', async () => {
    const { key } = await store.create({ tenant: 'tight', name: 'k', scopes: ['infer'], now: 1 });
    const a = pod();
    for (let i = 0; i < 3; i++) expect(await outcome(a.admit(`Bearer ${key}`, limiter, plan('set')))).toBe('admitted');
    await settings.patch('tight', { keyRequestsPerMinute: 3 });
    expect(await outcome(a.admit(`Bearer ${key}`, limiter, plan('set')))).toBe('key_requests');
    await settings.patch('tight', { keyRequestsPerMinute: null });
    const back = await a.admit(`Bearer ${key}`, limiter, plan('set'));
    expect(back.limits[0]).toMatchObject({ limit: 50, remaining: 46 });
  });

  it('re-checks a refusal made from remembered settings, so lifting an allowlist takes effect at once', async () => {
    const { key } = await store.create({ tenant: 'netco', name: 'k', scopes: ['infer'], now: 1 });
    const a = pod();
    expect(await outcome(a.admit(`Bearer ${key}`, limiter, plan('net')))).toBe('admitted');
    await settings.patch('netco', { ipAllowlist: ['10.0.0.1'] });
    expect(await outcome(a.admit(`Bearer ${key}`, limiter, plan('net')))).toBe('forbidden');
    await settings.patch('netco', { ipAllowlist: null });
    expect(await outcome(a.admit(`Bearer ${key}`, limiter, plan('net')))).toBe('admitted');
  });

  it('refuses unknown and malformed keys without taking any limit', async () => {
    const a = pod();
    expect(await outcome(a.admit(undefined, limiter, plan('bad')))).toBe('missing');
    expect(await outcome(a.admit('Bearer fvlm_000000000000000000000000000000000000000', limiter, plan('bad')))).toBe('unknown_key');
    expect(await redis.keys(`${prefix}:rl:bad:*`)).toEqual([]);
  });
});

describe('TenantSettingsStore.patch under concurrency', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let other: Redis;
  beforeAll(() => {
    redis = testRedis();
    other = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
    other.disconnect();
  });

  it('keeps every field of patches that two gateways apply to one tenant at the same time', async () => {
    const pods = [new TenantSettingsStore(redis, prefix, DEFAULTS), new TenantSettingsStore(other, prefix, DEFAULTS)];
    const fields = ['requestsPerMinute', 'keyRequestsPerMinute', 'tokensPerMinute', 'maxInFlightJobs', 'maxQueuedJobs'] as const;
    await Promise.all(fields.map((f, i) => (pods[i % 2] as TenantSettingsStore).patch('busy', { [f]: 7 + i })));
    const { overrides } = await (pods[0] as TenantSettingsStore).get('busy');
    expect(overrides).toEqual({ requestsPerMinute: 7, keyRequestsPerMinute: 8, tokensPerMinute: 9, maxInFlightJobs: 10, maxQueuedJobs: 11 });
    await Promise.all(fields.map((f, i) => (pods[i % 2] as TenantSettingsStore).patch('busy', { [f]: null })));
    expect(await redis.exists(`${prefix}:tenant:busy`)).toBe(0);
  });
});
