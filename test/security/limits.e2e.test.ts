import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import { chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, uniquePrefix, until } from '../support/stack';
import { bearer, createKey, leaksIn, startSecureGateway, type SecureGateway } from './support/gateways';

interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

describe('rate limits, quotas and admission control', () => {
  const prefix = uniquePrefix();
  const busyPrefix = uniquePrefix();
  let gw: SecureGateway;
  let busy: SecureGateway;
  let admin: string;
  let image: Buffer;
  const keys: string[] = [];
  let n = 0;
  const question = () => `limits question ${n++}`;

  const patchTenant = async (tenant: string, body: unknown): Promise<void> => {
    const res = await fetch(`${gw.url}/v1/admin/tenants/${tenant}`, { method: 'PATCH', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect(res.status).toBe(200);
  };
  const key = async (tenant: string): Promise<string> => {
    const k = (await createKey(prefix, tenant, ['infer', 'jobs:read'])).key;
    keys.push(k);
    return k;
  };

  beforeAll(async () => {
    admin = (await createKey(prefix, 'ops', ['admin'])).key;
    keys.push(admin);
    [gw, busy, image] = await Promise.all([startSecureGateway(prefix, { FAIR_DISPATCH_TARGET: '1' }), startSecureGateway(busyPrefix, { ADMISSION_MAX_BACKLOG: '3' }), png(16, 16, 5)]);
  });
  afterAll(async () => {
    await Promise.all([gw?.close(), busy?.close()]);
    await Promise.all([cleanupPrefix(prefix), cleanupPrefix(busyPrefix)]);
  });

  it('limits requests per key and per tenant with 429, Retry-After and RateLimit headers', async () => {
    await patchTenant('rl', { keyRequestsPerMinute: 3, requestsPerMinute: 5 });
    const [k1, k2] = [await key('rl'), await key('rl')];
    const get = (k: string) => fetch(`${gw.url}/v1/models`, { headers: bearer(k) });
    const first = await get(k1);
    expect(first.status).toBe(200);
    expect(first.headers.get('ratelimit-limit')).toBe('3');
    expect(first.headers.get('ratelimit-remaining')).toBe('2');
    expect(Number(first.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    await get(k1);
    await get(k1);
    const over = await get(k1);
    expect(over.status).toBe(429);
    expect(Number(over.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(Number(over.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(over.headers.get('ratelimit-remaining')).toBe('0');
    const body = (await over.json()) as ErrorBody;
    expect(body.error).toMatchObject({ code: 'rate_limited', type: 'rate_limit_error' });
    expect(body.error.message).toMatch(/API key/);
    expect((await get(k2)).status).toBe(200);
    expect((await get(k2)).status).toBe(200);
    const tenantOver = await get(k2);
    expect(tenantOver.status).toBe(429);
    expect(((await tenantOver.json()) as ErrorBody).error.message).toMatch(/organisation/);
  });

  it("caps a tenant's async jobs waiting in the fair queue (no worker runs here) with 429, and never other tenants", async () => {
    await patchTenant('cap', { maxBacklogJobs: 2 });
    const k = await key('cap');
    let accepted = 0;
    const over = await until('the backlog cap', async () => {
      const res = await postJson(`${gw.url}/v1/jobs`, chatBody(image, question()), bearer(k));
      if (res.status === 202) accepted++;
      return res.status === 202 ? undefined : res;
    });
    expect(over.status).toBe(429);
    expect(over.headers.get('retry-after')).toBe('5');
    expect(((await over.json()) as ErrorBody).error.message).toBe(
      'Your organisation already has 2 async and batch jobs waiting for this model, its limit; retry when some have started.',
    );
    // With no worker, the gateway's dispatcher moved exactly one job into the pool's queue (its target, one tick
    // at a time): the rest wait in the fair queue, capped. A claimed job reaches BullMQ a moment after it leaves.
    const redis = new Redis(REDIS_URL);
    const k2 = new RedisKeys(prefix);
    const queue = poolQueue('tiny-random');
    const [dispatched, held] = await until('every accepted job to be held or dispatched', async () => {
      const r = (await redis.multi().zcard(`${k2.bull()}:${queue}:prioritized`).hget(k2.fair(queue, 'counts'), 'cap').exec()) ?? [];
      const now = [Number(r[0]?.[1] ?? 0), Number(r[1]?.[1] ?? 0)] as const;
      return now[0] + now[1] === accepted ? now : undefined;
    });
    expect([dispatched, held]).toEqual([1, 2]);
    redis.disconnect();
    expect((await postJson(`${gw.url}/v1/jobs`, chatBody(image, question()), bearer(await key('other')))).status).toBe(202);
  });

  it('reserves max_tokens against the tenant tokens-per-minute budget', async () => {
    await patchTenant('tok', { tokensPerMinute: 50 });
    const k = await key('tok');
    const post = (maxTokens: number) => postJson(`${gw.url}/v1/jobs`, chatBody(image, question(), { max_tokens: maxTokens }), bearer(k));
    expect((await post(20)).status).toBe(202);
    expect((await post(20)).status).toBe(202);
    const over = await post(20);
    expect(over.status).toBe(429);
    expect(((await over.json()) as ErrorBody).error.message).toMatch(/tokens per minute/);
    const never = (await (await post(60)).json()) as ErrorBody;
    expect(never.error).toMatchObject({ code: 'invalid_request', param: 'max_tokens' });
  });

  it('answers 503 overloaded with Retry-After once the global backlog passes its threshold', async () => {
    const k = (await createKey(busyPrefix, 'acme', ['infer'])).key;
    keys.push(k);
    const statuses: number[] = [];
    const last = await until('a 503 from admission control', async () => {
      const res = await postJson(`${busy.url}/v1/jobs`, chatBody(image, question()), bearer(k));
      statuses.push(res.status);
      return res.status === 503 ? res : undefined;
    }, 10_000);
    expect(last.headers.get('retry-after')).toBe('5');
    expect(((await last.json()) as ErrorBody).error.code).toBe('overloaded');
    expect(statuses.filter((s) => s !== 202 && s !== 503)).toEqual([]);
    const redis = new Redis(REDIS_URL);
    const queue = new Queue(poolQueue('tiny-random'), { connection: redis, prefix: new RedisKeys(busyPrefix).bull() });
    // The backlog is read at most every 250 ms per pod: the bound holds up to what one pod admits in that time.
    expect(await queue.count()).toBeLessThan(3 + 50);
    await queue.close();
    redis.disconnect();
  });

  it('audits limit hits and keeps keys out of the logs', async () => {
    const audit = (await (await fetch(`${gw.url}/v1/admin/audit?type=limit_hit`, { headers: bearer(admin) })).json()) as { data: { limit: string }[] };
    expect(new Set(audit.data.map((e) => e.limit))).toEqual(new Set(['key_requests', 'tenant_requests', 'tenant_queued', 'tenant_tokens']));
    expect(leaksIn(gw.logs() + busy.logs(), { keys, questions: Array.from({ length: n }, (_, i) => `limits question ${i}`) })).toEqual([]);
  });
});
