import { Redis, type RedisOptions } from 'ioredis';
import { AppError } from '@fastvlm/contracts';

/**
 * How a connection behaves when Redis is away:
 * - `producer` (gateway): commands fail at once so the HTTP request can answer 503;
 * - `consumer` (worker, BullMQ): queue commands and reconnect forever;
 * - `subscriber`: pub/sub only, reconnects forever and re-subscribes.
 */
export type RedisRole = 'producer' | 'consumer' | 'subscriber';

/** Receives connection errors; ioredis prints unhandled ones to stderr otherwise. */
export type RedisErrorSink = (err: Error, connection: string) => void;

export function createRedis(url: string, role: RedisRole, name: string, onError: RedisErrorSink): Redis {
  const redis = build(url, role, name);
  // Reconnection is automatic; only the first error of an outage is worth a log line.
  let failing = false;
  redis.on('error', (err: Error) => {
    if (!failing) onError(err, name);
    failing = true;
  });
  redis.on('ready', () => (failing = false));
  return redis;
}

function build(url: string, role: RedisRole, name: string): Redis {
  const base: RedisOptions = {
    connectionName: name,
    lazyConnect: false,
    // Reconnect forever with a capped backoff: Redis restarts must heal by themselves.
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2000),
  };
  switch (role) {
    case 'producer':
      return new Redis(url, { ...base, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000 });
    case 'consumer':
    case 'subscriber':
      return new Redis(url, { ...base, maxRetriesPerRequest: null });
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
 * - it must be a standalone server (a primary, possibly with replicas): the
 *   job scripts and transactions touch keys in many hash slots, which a
 *   Cluster node refuses (CROSSSLOT), and a Sentinel stores no data at all;
 * - it must never evict: an evicted job hash or event stream is lost work.
 */
export async function queueRedisProblem(redis: Redis): Promise<string | null> {
  const mode = infoField(await redis.info('server'), 'redis_mode');
  if (mode === 'cluster') {
    return (
      'The queue Redis (REDIS_URL) is a Redis Cluster node (redis_mode:cluster). FastVLM needs a standalone Redis ' +
      '(a primary, with replicas if you like): its scripts and transactions use keys in many hash slots, which a cluster refuses with CROSSSLOT.'
    );
  }
  if (mode === 'sentinel') {
    return (
      'The queue Redis (REDIS_URL) is a Redis Sentinel (redis_mode:sentinel), which monitors Redis servers but stores no data. ' +
      'Point REDIS_URL at the primary itself (SENTINEL get-master-addr-by-name <name> tells its address).'
    );
  }
  const policy = infoField(await redis.info('memory'), 'maxmemory_policy');
  if (policy !== undefined && policy !== 'noeviction') {
    return (
      `The queue Redis uses maxmemory-policy "${policy}"; it must be "noeviction" so that jobs are never lost ` +
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
