import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from './redis';
import { TEST_REDIS_URL, testPrefix } from './test-redis';
import { waitFor } from './test-redis-server';
import { RedisSentinelGroup } from './test-redis-sentinel';

/** The port of the server the connection is talking to now (null while it has no socket). */
const remotePort = (r: Redis): number | null => (r.status === 'ready' ? ((r.stream as Socket | undefined)?.remotePort ?? null) : null);

describe('createRedis with a Sentinel target', () => {
  let group: RedisSentinelGroup;
  let consumer: Redis;
  const prefix = testPrefix();
  const errors: string[] = [];

  beforeAll(async () => {
    group = await RedisSentinelGroup.start();
    // REDIS_URL's host is not used with Sentinel: the suite's own Redis must never see these keys.
    consumer = createRedis({ kind: 'sentinel', url: TEST_REDIS_URL, sentinels: group.sentinelNodes, name: group.name }, 'consumer', 'sentinel-test', (e) => errors.push(e.message));
  });
  afterAll(async () => {
    consumer?.disconnect();
    await group?.dispose();
  });

  it('writes to the primary the Sentinels name, and follows a failover without being reconnected', async () => {
    await consumer.set(`${prefix}:before`, '1');
    expect(remotePort(consumer)).toBe(group.masterPort);
    expect(await group.onNode(group.masterPort, (c) => c.get(`${prefix}:before`))).toBe('1');
    const suite = await group.onNode(Number(new URL(TEST_REDIS_URL).port || 6379), (c) => c.exists(`${prefix}:before`));
    expect(suite).toBe(0);

    await group.failover();
    // Every Sentinel names the former replica once the failover is done (+switch-master).
    await waitFor('the Sentinels to name the replica as primary', async () => (await group.mastersSeen()).every((p) => p === group.replicaPort), 15_000);
    // The connection hears +switch-master from the Sentinels and reconnects to the new primary by itself.
    await waitFor('the connection to move to the new primary', () => remotePort(consumer) === group.replicaPort, 10_000);
    await consumer.set(`${prefix}:after`, '2');
    expect(await group.onNode(group.replicaPort, (c) => c.get(`${prefix}:after`))).toBe('2');
    // What was written before the failover was replicated: the new primary has it too.
    expect(await group.onNode(group.replicaPort, (c) => c.get(`${prefix}:before`))).toBe('1');
    expect((await group.onNode(group.replicaPort, (c) => c.info('replication'))).match(/^role:(\w+)/m)?.[1]).toBe('master');
  }, 30_000);
});
