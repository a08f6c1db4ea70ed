import type { Redis } from 'ioredis';

/**
 * True when `p` settles (either way) within `ms`. Shutdown steps talk to a
 * Redis that may be away, over connections that retry forever; each step
 * is raced against what is left of the shutdown timeout instead of awaited.
 */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** QUIT (which waits for the replies of commands already sent) when Redis answers within `ms`; otherwise drops the connection. */
export async function closeRedis(redis: Redis, ms: number): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready' || !(await settlesWithin(redis.quit(), ms))) redis.disconnect();
}
