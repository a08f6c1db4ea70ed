import type { Redis } from 'ioredis';
import { AppError, RedisKeys } from '@fastvlm/contracts';
import { asCluster } from '@fastvlm/jobs';

/** What a migration did: keys moved, and keys left where they were because their new name was taken. */
export interface LayoutMigration {
  moved: number;
  kept: string[];
}

/** The long-lived keys of the layout before Redis Cluster support, relative to the prefix. */
const OLD_NAMES = ['apikey:*', 'apikey-ids', 'tenant:*', 'audit'];

/**
 * Moves API keys, their id index, tenant settings and the audit log from
 * `<prefix>:…` to `<prefix>:{<prefix>}:…`, the shared slot where this version
 * reads them (README, *Key layout*). Everything else of the old layout is
 * short-lived (counters, job records) or drained before an upgrade (queues).
 * RENAMENX: a key whose new name exists already is left alone and reported,
 * and a second run moves nothing. The old layout only ever ran on a single
 * Redis, so a Cluster is refused.
 */
export async function migrateKeyLayout(redis: Redis, prefix: string): Promise<LayoutMigration> {
  if (asCluster(redis)) {
    throw new AppError('invalid_request', 'Run migrate-layout against the single Redis the old layout lived in (REDIS_URL or REDIS_SENTINELS), before moving to a Cluster.');
  }
  const shared = new RedisKeys(prefix).shared;
  const result: LayoutMigration = { moved: 0, kept: [] };
  for (const name of OLD_NAMES) {
    for (const key of await scanAll(redis, `${prefix}:${name}`)) {
      const target = `${shared}:${key.slice(prefix.length + 1)}`;
      if ((await redis.renamenx(key, target)) === 1) result.moved++;
      else result.kept.push(key);
    }
  }
  return result;
}

async function scanAll(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out;
}
