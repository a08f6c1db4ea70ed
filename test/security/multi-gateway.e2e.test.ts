import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, uniquePrefix, until } from '../support/stack';
import { bearer, createKey, leaksIn, startGatewayProcess, type GatewayProcess } from './support/gateways';

/** Fires all requests at once, spread over the gateways; returns the statuses. */
async function burst(gateways: GatewayProcess[], n: number, send: (url: string, i: number) => Promise<Response>): Promise<number[]> {
  const responses = await Promise.all(Array.from({ length: n }, (_, i) => send((gateways[i % gateways.length] as GatewayProcess).url, i)));
  return Promise.all(responses.map(async (r) => {
    await r.arrayBuffer();
    return r.status;
  }));
}

const count = (statuses: number[], status: number): number => statuses.filter((s) => s === status).length;

describe('limits shared by three gateway processes through Redis', () => {
  const prefix = uniquePrefix();
  const N = 40;
  let gateways: GatewayProcess[] = [];
  let image: Buffer;
  const keys: string[] = [];

  beforeAll(async () => {
    const env = { RATE_LIMIT_KEY_RPM: String(N), RATE_LIMIT_TENANT_RPM: String(2 * N), TENANT_MAX_BACKLOG_JOBS: '5', FAIR_DISPATCH_TARGET: '1' };
    [gateways, image] = await Promise.all([Promise.all([0, 1, 2].map(() => startGatewayProcess(prefix, env))), png(16, 16, 11)]);
  }, 120_000);
  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await cleanupPrefix(prefix);
  });

  it(`admit exactly N requests of one key per window for a limit of N (N = ${N}), the rest 429`, async () => {
    const { key } = await createKey(prefix, 'burst', ['infer', 'jobs:read']);
    keys.push(key);
    const statuses = await burst(gateways, 5 * N, (url) => fetch(`${url}/v1/models`, { headers: bearer(key) }));
    expect(count(statuses, 200)).toBe(N);
    expect(count(statuses, 429)).toBe(4 * N);
  });

  it('admit exactly the tenant limit across several keys of one tenant', async () => {
    const ks = await Promise.all([0, 1, 2, 3].map(() => createKey(prefix, 'team', ['infer'])));
    keys.push(...ks.map((k) => k.key));
    const statuses = await burst(gateways, 4 * N, (url, i) => fetch(`${url}/v1/models`, { headers: bearer((ks[i % ks.length] as { key: string }).key) }));
    expect(count(statuses, 200)).toBe(2 * N);
    expect(count(statuses, 429)).toBe(2 * N);
  });

  it("never hold more than a tenant's backlog cap of async jobs from concurrent submissions on all gateways", async () => {
    const { key } = await createKey(prefix, 'jobs', ['infer']);
    keys.push(key);
    const statuses = await burst(gateways, 30, (url, i) => postJson(`${url}/v1/jobs`, chatBody(image, `burst question number ${i}`), bearer(key)));
    // No worker runs: each gateway's dispatcher may move one job into the pool's queue (target 1) while
    // the burst fills the fair queue, and none once a job waits there. Every accepted job is in one of the
    // two, the fair queue never held more than the cap, and only the dispatched ones let more in.
    const redis = new Redis(REDIS_URL);
    try {
      const k = new RedisKeys(prefix);
      const queue = poolQueue('tiny-random');
      const read = async (): Promise<[number, number]> => {
        const r = (await redis.multi().zcard(`${k.bull()}:${queue}:prioritized`).hget(k.fair(queue, 'counts'), 'jobs').exec()) ?? [];
        return [Number(r[0]?.[1] ?? 0), Number(r[1]?.[1] ?? 0)];
      };
      // A claimed job leaves the fair queue a moment before it is in BullMQ: wait until every accepted job is in one.
      const [dispatched, held] = await until('every accepted job to be held or dispatched', async () => {
        const now = await read();
        return now[0] + now[1] === count(statuses, 202) ? now : undefined;
      });
      expect(held).toBeLessThanOrEqual(5);
      expect(dispatched).toBeGreaterThanOrEqual(1);
      expect(dispatched).toBeLessThanOrEqual(gateways.length);
      expect(count(statuses, 429)).toBe(30 - count(statuses, 202));
    } finally {
      redis.disconnect();
    }
  });

  it('leaves no key, Authorization header or question text in any gateway log', () => {
    const logs = gateways.map((g) => g.output()).join('\n');
    expect(logs).toContain('"request"');
    expect(leaksIn(logs, { keys, questions: Array.from({ length: 30 }, (_, i) => `burst question number ${i}`) })).toEqual([]);
  });
});
