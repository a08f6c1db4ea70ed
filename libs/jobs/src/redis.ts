import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { AppError, type RedisTarget } from '@fastvlm/contracts';

/**
 * How a connection behaves when Redis is away:
 * - `producer` (gateway): commands fail at once so the HTTP request can answer 503;
 * - `consumer` (worker, BullMQ): queue commands and reconnect forever;
 * - `subscriber`: pub/sub only, reconnects forever and re-subscribes.
 */
export type RedisRole = 'producer' | 'consumer' | 'subscriber';

/** Receives connection errors; ioredis prints unhandled ones to stderr otherwise. */
export type RedisErrorSink = (err: Error, connection: string) => void;

/**
 * Opens a connection to a standalone Redis (a URL), a Sentinel group or a
 * Cluster: the only place where the three differ. A Cluster is returned typed
 * as `Redis`: ioredis gives both the same command API, and TypeScript cannot
 * call a union of their overloaded commands. Code that must tell them apart
 * (per-node checks, pub/sub) asks `asCluster`.
 */
export function createRedis(target: RedisTarget | string, role: RedisRole, name: string, onError: RedisErrorSink): Redis {
  const t: RedisTarget = typeof target === 'string' ? { kind: 'standalone', url: target } : target;
  const redis = build(t, role, name);
  // Reconnection is automatic; only the first error of an outage is worth a log line.
  let failing = false;
  redis.on('error', (err: Error) => {
    if (!failing) onError(err, name);
    failing = true;
  });
  redis.on('ready', () => (failing = false));
  return redis;
}

/** The Cluster behind a connection made by `createRedis`, or null for a standalone or Sentinel one. */
export function asCluster(redis: Redis): Cluster | null {
  return (redis as unknown as { isCluster?: boolean }).isCluster === true ? (redis as unknown as Cluster) : null;
}

function roleOptions(role: RedisRole): RedisOptions {
  switch (role) {
    case 'producer':
      return { enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 };
    case 'consumer':
    case 'subscriber':
      return { maxRetriesPerRequest: null };
  }
}

// Reconnect forever with a capped backoff: Redis restarts and failovers must heal by themselves.
const retryStrategy = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2000);

// After a failover the old primary may come back as a replica while a client still
// talks to it: reconnect (through the Sentinels, to the new primary) and resend.
const reconnectOnError = (err: Error): 2 | false => (err.message.startsWith('READONLY') ? 2 : false);

function build(t: RedisTarget, role: RedisRole, name: string): Redis {
  const base: RedisOptions = { connectionName: name, lazyConnect: false, retryStrategy, reconnectOnError, ...roleOptions(role) };
  switch (t.kind) {
    case 'standalone':
      return new Redis(t.url, base);
    case 'sentinel':
      return new Redis(t.url, {
        ...base,
        sentinels: t.sentinels,
        name: t.name,
        ...(t.sentinelPassword ? { sentinelPassword: t.sentinelPassword } : {}),
        sentinelRetryStrategy: retryStrategy,
        // Learn of a failover from the Sentinels' +switch-master instead of only when the old primary's socket dies.
        failoverDetector: true,
      });
    case 'cluster': {
      const u = new URL(t.url);
      const options: ClusterOptions = {
        redisOptions: {
          ...base,
          ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
          ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
          ...(u.protocol === 'rediss:' ? { tls: {} } : {}),
        },
        clusterRetryStrategy: retryStrategy,
        enableOfflineQueue: role !== 'producer',
        // Job events are published per shard (SPUBLISH), so subscribers follow each channel's shard.
        shardedSubscribers: role === 'subscriber',
        slotsRefreshTimeout: 2000,
        // Connect to the names the cluster announces as they are: TLS certificates of managed
        // clusters (ElastiCache, MemoryDB) name the hosts, not the addresses a lookup would give.
        dnsLookup: (address, callback) => callback(null, address),
      };
      return new Cluster(t.nodes, options) as unknown as Redis;
    }
  }
}

/** Resolves once the connection is ready, or rejects after `timeoutMs`. */
export async function waitReady(redis: Redis, timeoutMs = 5000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new AppError('service_unavailable', `Redis did not become ready within ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      cleanup();
      resolve();
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/**
 * Why the queue Redis is unsafe to run on, or null when it is safe:
 * - a Cluster node or a Sentinel reached as if it were a standalone server
 *   (REDIS_URL) will not work: say which variable to set instead;
 * - no primary may evict: an evicted job hash or event stream is lost work.
 *   With a Cluster every primary is checked.
 */
export async function queueRedisProblem(redis: Redis): Promise<string | null> {
  const cluster = asCluster(redis);
  if (cluster) {
    // The primaries are known once the slots are: as a command would, wait for that.
    if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
    const masters = cluster.nodes('master');
    if (masters.length === 0) return 'The queue Redis Cluster has no reachable primary yet.';
    for (const node of masters) {
      const problem = await evictionProblem(node, `primary ${node.options.host ?? '?'}:${node.options.port ?? '?'}`);
      if (problem) return problem;
    }
    return null;
  }
  const mode = infoField(await redis.info('server'), 'redis_mode');
  if (mode === 'cluster') {
    return (
      'The queue Redis (REDIS_URL) is a Redis Cluster node (redis_mode:cluster). ' +
      'Give the cluster as REDIS_CLUSTER_NODES=host:port,… so that keys are routed to the node that owns their slot.'
    );
  }
  if (mode === 'sentinel') {
    return (
      'The queue Redis (REDIS_URL) is a Redis Sentinel (redis_mode:sentinel), which monitors Redis servers but stores no data. ' +
      'Give the Sentinels as REDIS_SENTINELS=host:port,… with REDIS_SENTINEL_NAME=<the monitored name>, and keep REDIS_URL for the credentials.'
    );
  }
  return evictionProblem(redis, 'Redis');
}

async function evictionProblem(node: Redis, what: string): Promise<string | null> {
  const policy = infoField(await node.info('memory'), 'maxmemory_policy');
  if (policy !== undefined && policy !== 'noeviction') {
    return (
      `The queue ${what} uses maxmemory-policy "${policy}"; it must be "noeviction" so that jobs are never lost ` +
      `(set it with CONFIG SET maxmemory-policy noeviction or in redis.conf).`
    );
  }
  return null;
}

/** Refuses to start against a queue Redis that would lose or refuse work (see `queueRedisProblem`). */
export async function assertQueueRedisSafe(redis: Redis): Promise<void> {
  const problem = await queueRedisProblem(redis);
  if (problem !== null) throw new AppError('service_unavailable', problem);
}

export interface RedisSafetyWatchOptions {
  /** Milliseconds between two checks. */
  intervalMs: number;
  /** Called after every check Redis answered, with the problem found or null. */
  onCheck: (problem: string | null) => void;
  /** A check that takes longer is dropped (Redis away: readiness already says so through its ping). */
  timeoutMs?: number;
}

/**
 * Re-runs `queueRedisProblem` periodically, because a policy checked only at
 * start can be changed underneath a running cluster (`CONFIG SET
 * maxmemory-policy allkeys-lru`). `problem` holds the latest verdict.
 */
export class RedisSafetyWatch {
  problem: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  constructor(
    private readonly redis: Redis,
    private readonly opts: RedisSafetyWatchOptions,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.check(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One check now (a no-op while another is still running). */
  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer')), this.opts.timeoutMs ?? 2_000);
      });
      this.problem = await Promise.race([queueRedisProblem(this.redis), timeout]);
      this.opts.onCheck(this.problem);
    } catch {
      // Unreachable or slow: keep the last verdict; the next check tries again.
    } finally {
      clearTimeout(timer);
      this.checking = false;
    }
  }
}

function infoField(info: string, name: string): string | undefined {
  return new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
}

/** True for errors that mean "Redis is not reachable right now" (as opposed to a bad command). */
export function isConnectionError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  return (
    /Stream isn't writeable|enableOfflineQueue|Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|max retries per request|Reached the max retries/i.test(
      e.message,
    ) || (e as { code?: string }).code === 'ECONNREFUSED'
  );
}
