import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { keyDigest } from './api-key-format';
import { AuditLog } from './audit-log';
import { ApiKeyStore } from './key-store';
import { migrateKeyLayout } from './layout-migration';
import { TenantSettingsStore } from './tenant-settings';
import { cleanupPrefix, TEST_TENANT_DEFAULTS, testPrefix, testRedis } from './test-redis';

describe('migrating keys from the layout before Redis Cluster support', () => {
  const prefix = testPrefix();
  const shared = new RedisKeys(prefix).shared;
  let redis: Redis;
  beforeAll(() => {
    redis = testRedis();
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('moves API keys, tenant settings and the audit log into the shared slot, where this version finds them, once', async () => {
    // Written as the previous version did: under the plain prefix.
    const { key, record } = await new ApiKeyStore(redis, prefix).create({ tenant: 'acme', name: 'old', scopes: ['infer'], now: 1 });
    await new TenantSettingsStore(redis, prefix, TEST_TENANT_DEFAULTS).patch('acme', { maxInFlightJobs: 3 });
    await new AuditLog(redis, prefix).record({ type: 'key_created', keyId: record.id, tenant: 'acme', scopes: ['infer'], actor: 'cli' });

    expect(await migrateKeyLayout(redis, prefix)).toEqual({ moved: 4, kept: [] });
    const found = await new ApiKeyStore(redis, shared).lookup(keyDigest(key));
    expect(found?.record).toMatchObject({ id: record.id, tenant: 'acme' });
    expect(await new ApiKeyStore(redis, shared).get(record.id)).toMatchObject({ id: record.id });
    expect((await new TenantSettingsStore(redis, shared, TEST_TENANT_DEFAULTS).get('acme')).settings.maxInFlightJobs).toBe(3);
    expect(await redis.xlen(`${shared}:audit`)).toBe(1);
    expect(await redis.exists(`${prefix}:apikey-ids`, `${prefix}:tenant:acme`, `${prefix}:audit`)).toBe(0);
    // A second run has nothing left to move.
    expect(await migrateKeyLayout(redis, prefix)).toEqual({ moved: 0, kept: [] });
  });

  it('leaves a key whose new name is taken where it is, and says so', async () => {
    await redis.set(`${prefix}:tenant:both`, '{"weight":2}');
    await redis.set(`${shared}:tenant:both`, '{"weight":3}');
    expect(await migrateKeyLayout(redis, prefix)).toEqual({ moved: 0, kept: [`${prefix}:tenant:both`] });
    expect(await redis.get(`${shared}:tenant:both`)).toBe('{"weight":3}');
  });
});
