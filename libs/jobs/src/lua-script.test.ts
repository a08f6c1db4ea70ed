import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { LuaScript } from './lua-script';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';

/** Adds ARGV[1] to KEYS[1] and answers the sum; 'none' answers nil; 'boom' fails in Redis (WRONGTYPE). */
const ADD = `
if ARGV[1] == 'none' then return nil end
if ARGV[1] == 'boom' then return redis.call('LPUSH', KEYS[1], 'x') end
return {KEYS[1], redis.call('INCRBY', KEYS[1], ARGV[1])}
`;

describe('LuaScript with batching, on real Redis', () => {
  const prefix = testPrefix();
  let redis: Redis;
  const add = new LuaScript(ADD, { batch: true });
  const key = (name: string): string => `${prefix}:${name}`;
  /** The commands sent while `f` runs. */
  async function commandsOf<T>(f: () => Promise<T>): Promise<{ result: T; commands: { name: string; args: unknown[] }[] }> {
    const sent = vi.spyOn(redis, 'sendCommand');
    try {
      const result = await f();
      return { result, commands: sent.mock.calls.map(([c]) => ({ name: c.name, args: c.args })) };
    } finally {
      sent.mockRestore();
    }
  }

  beforeAll(async () => {
    redis = new Redis(TEST_REDIS_URL);
    // Load both forms (alone and batched), so that the counts below see no NOSCRIPT fallback.
    await add.run(redis, [key('warm')], [1]);
    await Promise.all([add.run(redis, [key('warm')], [1]), add.run(redis, [key('warm')], [1])]);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('runs calls made together as one command, in order, each seeing the writes of the calls before it', async () => {
    const { result, commands } = await commandsOf(() => Promise.all([1, 2, 3, 4, 5].map((n) => add.run(redis, [key('sum')], [n]))));
    expect(result).toEqual([1, 3, 6, 10, 15].map((sum) => [key('sum'), sum]));
    expect(commands.map((c) => c.name)).toEqual(['evalsha']);
  });

  it('gives each call the reply for its own keys and arguments', async () => {
    const result = await Promise.all(['a', 'b', 'a', 'c'].map((k, i) => add.run(redis, [key(`own-${k}`)], [10 ** i])));
    expect(result).toEqual([
      [key('own-a'), 1],
      [key('own-b'), 10],
      [key('own-a'), 101],
      [key('own-c'), 1000],
    ]);
  });

  it('fails only the call whose script failed, and keeps a nil reply in its place', async () => {
    await redis.hset(key('hash'), 'f', 'v');
    const settled = await Promise.allSettled([
      add.run(redis, [key('mixed')], [2]),
      add.run(redis, [key('hash')], ['boom']),
      add.run(redis, [key('mixed')], ['none']),
      add.run(redis, [key('mixed')], [3]),
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(settled[0]).toEqual({ status: 'fulfilled', value: [key('mixed'), 2] });
    expect(String((settled[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    expect(settled[2]).toEqual({ status: 'fulfilled', value: null });
    expect(settled[3]).toEqual({ status: 'fulfilled', value: [key('mixed'), 5] });
  });

  it('runs a call made alone as the script itself', async () => {
    const { result, commands } = await commandsOf(() => add.run(redis, [key('alone')], [7]));
    expect(result).toEqual([key('alone'), 7]);
    expect(commands).toHaveLength(1);
    // EVALSHA sha numkeys key arg: the script's own keys and arguments, no batch header.
    expect(commands[0]?.args.slice(1)).toEqual(['1', key('alone'), '7']);
  });

  it('splits a large burst into batches of at most 64 calls, still in order', async () => {
    const { result, commands } = await commandsOf(() => Promise.all(Array.from({ length: 150 }, () => add.run(redis, [key('burst')], [1]))));
    expect(result.map((r) => (r as [string, number])[1])).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    expect(commands.map((c) => c.name)).toEqual(['evalsha', 'evalsha', 'evalsha']);
  });

  it('fails every call of a batch when Redis cannot run it', async () => {
    const closed = new Redis(TEST_REDIS_URL, { lazyConnect: true, enableOfflineQueue: false });
    closed.on('error', () => undefined);
    const settled = await Promise.allSettled([add.run(closed, [key('x')], [1]), add.run(closed, [key('x')], [1])]);
    closed.disconnect();
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(await redis.exists(key('x'))).toBe(0);
  });

  it('runs unbatched scripts at once, one command per call', async () => {
    const plain = new LuaScript(ADD);
    await plain.run(redis, [key('plain')], [1]);
    const { result, commands } = await commandsOf(() => Promise.all([plain.run(redis, [key('plain')], [1]), plain.run(redis, [key('plain')], [1])]));
    expect(result).toEqual([
      [key('plain'), 2],
      [key('plain'), 3],
    ]);
    expect(commands.map((c) => c.name)).toEqual(['evalsha', 'evalsha']);
  });
});
