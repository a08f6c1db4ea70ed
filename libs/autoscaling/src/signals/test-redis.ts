import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import type { Redis } from 'ioredis';
import { RedisKeys } from '@fastvlm/contracts';
import { createRedis, waitReady } from '@fastvlm/jobs';

/** The shared test Redis; each test writes under a prefix of its own. */
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A fresh prefix and its keys. */
export function freshKeys(): RedisKeys {
  return new RedisKeys(`t-${randomBytes(5).toString('hex')}`);
}

/** A fail-fast connection, as the gateway and the workers publish signals over, once it is ready. */
export async function producer(url = TEST_REDIS_URL): Promise<Redis> {
  const redis = createRedis(url, 'producer', 'signals-test', () => undefined);
  await waitReady(redis);
  return redis;
}

/** A URL where no Redis answers (a port that was free a moment ago). */
export async function deadRedisUrl(): Promise<string> {
  const port = await new Promise<number>((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
    srv.on('error', reject);
  });
  return `redis://127.0.0.1:${port}`;
}

/** Polls until `check` holds, or fails after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Closes the connection and waits until it has ended (`connect()` brings it back). */
export async function down(redis: Redis): Promise<void> {
  const ended = once(redis, 'end');
  redis.disconnect();
  await ended;
}

export async function cleanup(redis: Redis, keys: RedisKeys): Promise<void> {
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${keys.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (found.length > 0) await redis.del(...found);
  } while (cursor !== '0');
}
