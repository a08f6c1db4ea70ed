import type { Redis } from 'ioredis';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';

/**
 * What a kind of key must do to count as bounded:
 * - `ttl`: every key carries a TTL (finished work expires);
 * - `cardinality`: a single long-lived set whose size the product caps.
 */
interface KindRule {
  kind: string;
  match: (rest: string) => boolean;
  rule: 'ttl' | 'bullmq' | 'registry' | 'pending' | 'static';
}

const BULL_STATE_SETS = ['wait', 'active', 'paused', 'delayed', 'prioritized', 'completed', 'failed', 'waiting-children'];

const RULES: KindRule[] = [
  { kind: 'records', match: (k) => k.startsWith('job:'), rule: 'ttl' },
  { kind: 'event streams', match: (k) => k.startsWith('events:'), rule: 'ttl' },
  { kind: 'images', match: (k) => k.startsWith('image:'), rule: 'ttl' },
  { kind: 'quota sets', match: (k) => k.startsWith('jobs-of:'), rule: 'ttl' },
  { kind: 'rate-limit counters', match: (k) => k.startsWith('rl:') || k.startsWith('auth-fail'), rule: 'ttl' },
  { kind: 'idempotency', match: (k) => k.startsWith('idem:'), rule: 'ttl' },
  { kind: 'answers', match: (k) => k.startsWith('answer:'), rule: 'ttl' },
  { kind: 'features', match: (k) => k.startsWith('features:'), rule: 'ttl' },
  { kind: 'recent-job lists', match: (k) => k.startsWith('tenant-jobs:'), rule: 'ttl' },
  { kind: 'worker registry', match: (k) => k === 'workers' || k.startsWith('worker:'), rule: 'registry' },
  { kind: 'pending index', match: (k) => k === 'pending-jobs', rule: 'pending' },
  { kind: 'bullmq', match: (k) => k.startsWith('bull:'), rule: 'bullmq' },
];

const OTHER: KindRule = { kind: 'other', match: () => true, rule: 'static' };

export interface KindCount {
  kind: string;
  count: number;
  withoutTtl: number;
  bounded: boolean;
  why: string;
}

export interface KeySnapshot {
  kinds: KindCount[];
}

/** Most finished jobs BullMQ keeps (the gateway's removeOnComplete.count). */
const BULL_COMPLETED_CAP = 10_000;
/** Static keys (settings, API keys, queue metadata) a deployment may hold. */
const STATIC_CAP = 100;

/** Counts the keys under `prefix` by kind and judges whether each kind is bounded. Uses SCAN: a tool, not the product. */
export async function keySnapshot(redis: Redis, prefix: string, liveWorkers = 1): Promise<KeySnapshot> {
  const all: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    all.push(...keys);
  } while (cursor !== '0');
  const groups = new Map<KindRule, string[]>();
  for (const key of all) {
    // Shared keys carry the deployment's hash tag after the prefix (see RedisKeys); the kind follows it.
    const shared = `${new RedisKeys(prefix).shared}:`;
    const rest = key.startsWith(shared) ? key.slice(shared.length) : key.slice(prefix.length + 1);
    const rule = RULES.find((r) => r.match(rest)) ?? OTHER;
    groups.set(rule, [...(groups.get(rule) ?? []), key]);
  }
  const kinds: KindCount[] = [];
  for (const rule of [...RULES, OTHER]) {
    const keys = groups.get(rule) ?? [];
    const ttls = await Promise.all(keys.map((k) => redis.pttl(k)));
    const withoutTtl = keys.filter((_, i) => (ttls[i] ?? -2) === -1);
    let bounded = true;
    let why = '';
    switch (rule.rule) {
      case 'ttl':
        bounded = withoutTtl.length === 0;
        why = bounded ? '' : `no TTL: ${withoutTtl.slice(0, 2).join(', ')}`;
        break;
      case 'registry': {
        const members = await redis.zcard(new RedisKeys(prefix).workers());
        const hashesWithoutTtl = withoutTtl.filter((k) => k !== new RedisKeys(prefix).workers());
        bounded = members <= liveWorkers && hashesWithoutTtl.length === 0;
        why = bounded ? '' : `${members} registered for ${liveWorkers} live`;
        break;
      }
      case 'pending': {
        const members = keys.length > 0 ? await redis.zcard(new RedisKeys(prefix).pendingJobs()) : 0;
        // Pending = created and not yet claimed: never more than the queue's backlog plus jobs in flight.
        const backlog = await queued(redis, prefix);
        bounded = members <= backlog + 50;
        why = bounded ? '' : `${members} pending for a backlog of ${backlog}`;
        break;
      }
      case 'bullmq': {
        const q = bullQueue(prefix);
        const sizes = await Promise.all(BULL_STATE_SETS.map(async (s) => setSize(redis, `${q}${s}`)));
        const inStates = sizes.reduce((a, b) => a + b, 0);
        const jobHashes = keys.filter((k) => /^[^:]+$/.test(k.slice(q.length)) && !BULL_STATE_SETS.includes(k.slice(q.length)) && !['id', 'meta', 'events', 'marker', 'stalled-check', 'limiter', 'pc', 'stalled'].includes(k.slice(q.length)));
        const completed = sizes[BULL_STATE_SETS.indexOf('completed')] ?? 0;
        bounded = completed <= BULL_COMPLETED_CAP && jobHashes.length <= inStates;
        why = bounded ? '' : `${jobHashes.length} job hashes for ${inStates} in states, ${completed} completed`;
        break;
      }
      case 'static':
        bounded = keys.length <= STATIC_CAP;
        why = bounded ? '' : `${keys.length} keys: ${keys.slice(0, 3).join(', ')}`;
        break;
    }
    kinds.push({ kind: rule.kind, count: keys.length, withoutTtl: withoutTtl.length, bounded, why });
  }
  return { kinds };
}

async function setSize(redis: Redis, key: string): Promise<number> {
  const type = await redis.type(key);
  if (type === 'zset') return redis.zcard(key);
  if (type === 'list') return redis.llen(key);
  if (type === 'set') return redis.scard(key);
  return 0;
}

async function queued(redis: Redis, prefix: string): Promise<number> {
  const q = bullQueue(prefix);
  const sizes = await Promise.all(['wait', 'active', 'delayed', 'prioritized', 'paused'].map((s) => setSize(redis, `${q}${s}`)));
  return sizes.reduce((a, b) => a + b, 0);
}

/** The tiny-random pool queue's BullMQ key prefix (the soak's model), with the trailing colon. */
function bullQueue(prefix: string): string {
  return `${new RedisKeys(prefix).bull()}:${poolQueue('tiny-random')}:`;
}
