import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { TenantSettings } from './tenant-settings';

/** Tests share the machine's Redis; each file writes under a prefix of its own. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export function testPrefix(): string {
  return `t-${randomBytes(5).toString('hex')}`;
}

export function testRedis(): Redis {
  return new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 });
}

export async function cleanupPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
}

/** Deployment defaults for tests of keys and tenants. */
export const TEST_TENANT_DEFAULTS: TenantSettings = {
  requestsPerMinute: 100,
  keyRequestsPerMinute: 50,
  tokensPerMinute: 10_000,
  maxInFlightJobs: 8,
  maxQueuedJobs: 8,
  imageUrls: false,
  ipAllowlist: [],
  maxWorkClass: 'interactive',
  weight: 1,
  maxBacklogJobs: 100_000,
};
