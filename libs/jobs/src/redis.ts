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
 * The queue Redis must never evict: an evicted job hash or event stream is lost
 * work. Refuse to start against one that would.
 */
export async function assertNoEviction(redis: Redis): Promise<void> {
  const info = await redis.info('memory');
  const policy = /maxmemory_policy:(\S+)/.exec(info)?.[1];
  if (policy !== undefined && policy !== 'noeviction') {
    throw new Error(
      `The queue Redis uses maxmemory-policy "${policy}"; it must be "noeviction" so that jobs are never lost ` +
        `(set it with CONFIG SET maxmemory-policy noeviction or in redis.conf).`,
    );
  }
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
