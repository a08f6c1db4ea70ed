import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import type { UsageBucketView } from '../../apps/gateway/src/usage/usage-query';
import { JobStore, type JobRecord } from '@fastvlm/jobs';
import { auth, chatBody, png, postJson, type Tenant } from '../support/requests';
import { API_KEYS, cleanupPrefix, REDIS_URL, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

type Bucket = UsageBucketView;
interface UsageList {
  object: string;
  start_time: number;
  end_time: number;
  group_by: string[];
  data: Bucket[];
}
interface ErrorBody {
  error: { message: string; type: string; code: string; param: string | null };
}

const ADMIN_KEY = 'ops-admin-key-0123456789abcdef';

/** What a tenant's jobs say they cost, from their own results: what its usage must sum to. */
interface Expected {
  jobs: number;
  deviceUs: number;
  promptTokens: number;
  completionTokens: number;
}

function expectedOf(records: JobRecord[]): Expected {
  const e: Expected = { jobs: 0, deviceUs: 0, promptTokens: 0, completionTokens: 0 };
  for (const r of records) {
    if (!r.result) throw new Error(`job ${r.id} has no result`);
    e.jobs += 1;
    // Results carry device time to the microsecond, as the usage counters do.
    e.deviceUs += Math.round((r.result.timings.deviceMs ?? Number.NaN) * 1000);
    e.promptTokens += r.result.usage.promptTokens;
    e.completionTokens += r.result.usage.completionTokens;
  }
  return e;
}

/** The sums of a list's rows, as the expectation is written. */
function summed(list: UsageList): Expected & { failed: number; cancelled: number; images: number } {
  const s = { jobs: 0, deviceUs: 0, promptTokens: 0, completionTokens: 0, failed: 0, cancelled: 0, images: 0 };
  for (const b of list.data) {
    s.jobs += b.jobs;
    s.deviceUs += Math.round(b.device_seconds * 1e6);
    s.promptTokens += b.prompt_tokens;
    s.completionTokens += b.completion_tokens;
    s.failed += b.failed_jobs;
    s.cancelled += b.cancelled_jobs;
    s.images += b.images;
  }
  return s;
}

describe('usage metering through the gateway and a worker', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let redis: Redis;
  let store: JobStore;
  const expected: Partial<Record<Tenant, Expected>> = {};

  const get = (path: string, headers: Record<string, string>): Promise<Response> => fetch(`${gw.url}${path}`, { headers });
  const usage = async (path: string, headers: Record<string, string>): Promise<UsageList> => {
    const res = await get(path, headers);
    expect(res.status).toBe(200);
    return (await res.json()) as UsageList;
  };
  const admin = { authorization: `Bearer ${ADMIN_KEY}` };

  beforeAll(async () => {
    const keys = [...Object.entries(API_KEYS).map(([t, k]) => `${t}:${k}`), `ops:${ADMIN_KEY}:admin`].join(',');
    [gw, worker] = await Promise.all([startGateway(prefix, { FASTVLM_API_KEYS: keys }), startWorker(prefix)]);
    redis = new Redis(REDIS_URL);
    store = new JobStore(redis, new RedisKeys(prefix), 60);

    // Submitted together so that the engine batches them: device time is shared within steps.
    const images = await Promise.all(Array.from({ length: 7 }, (_, i) => png(48, 48, 100 + i)));
    const jobIds: string[] = [];
    const async = (tenant: Tenant, i: number, maxTokens: number) =>
      postJson(`${gw.url}/v1/jobs`, chatBody(images[i] as Buffer, `usage question ${i}`, { max_tokens: maxTokens }), auth(tenant)).then(async (res) => {
        expect(res.status).toBe(202);
        jobIds.push(((await res.json()) as { id: string }).id);
      });
    const sync = (tenant: Tenant, i: number, maxTokens: number) =>
      postJson(`${gw.url}/v1/chat/completions`, chatBody(images[i] as Buffer, `usage question ${i}`, { max_tokens: maxTokens }), auth(tenant)).then((res) =>
        expect(res.status).toBe(200),
      );
    await Promise.all([async('acme', 0, 3), async('acme', 1, 7), async('acme', 2, 12), sync('acme', 3, 5), sync('acme', 4, 9), async('globex', 5, 4), async('globex', 6, 6)]);
    await until('every async job to finish', async () => (await Promise.all(jobIds.map((id) => store.status(id)))).every((s) => s === 'succeeded'));
    for (const tenant of ['acme', 'globex'] as const) {
      const records = await store.recent(tenant, 100);
      expect(records.map((r) => r.status)).toEqual(records.map(() => 'succeeded'));
      expected[tenant] = expectedOf(records);
    }
    expect([expected.acme?.jobs, expected.globex?.jobs]).toEqual([5, 2]);
    // Each job's usage is written right after its result, which clients may see first.
    await until('usage of every job', async () => {
      const all = summed(await usage('/v1/admin/usage?group_by=model', admin));
      return all.jobs === 7;
    });
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  it("GET /v1/usage sums the caller's own jobs exactly: device time, tokens, images", async () => {
    for (const tenant of ['acme', 'globex'] as const) {
      const list = await usage('/v1/usage?group_by=model', auth(tenant));
      expect(list.object).toBe('list');
      expect(list.group_by).toEqual(['model']);
      expect(list.data).toHaveLength(1);
      expect(list.data[0]).toMatchObject({ object: 'usage.bucket', tenant, model: 'tiny-random', start_time: list.start_time, end_time: list.end_time });
      const e = expected[tenant];
      expect(summed(list)).toEqual({ ...e, failed: 0, cancelled: 0, images: e?.jobs });
      expect(e?.deviceUs).toBeGreaterThan(0);
    }
  });

  it('groups by hour, day and class without changing the sums, and takes OpenAI-style unix start_time/end_time', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const q of ['group_by=hour', 'group_by=day', 'group_by=class', 'group_by=hour,model,class', `start_time=${now - 7200}&end_time=${now + 1}`]) {
      const list = await usage(`/v1/usage?${q}`, auth('acme'));
      expect(list.data.every((b) => b.tenant === 'acme')).toBe(true);
      expect(summed(list)).toMatchObject(expected.acme ?? {});
    }
    const hourly = await usage('/v1/usage?group_by=hour', auth('acme'));
    for (const b of hourly.data) {
      expect(b.end_time - b.start_time).toBe(3600);
      expect(b.start_time % 3600).toBe(0);
    }
    // A range before the jobs ran holds none of them.
    expect((await usage(`/v1/usage?from=${now - 30 * 86_400}&to=${now - 29 * 86_400}`, auth('acme'))).data).toEqual([]);
  });

  it('GET /v1/admin/usage reads every tenant, or the one named', async () => {
    const all = await usage('/v1/admin/usage?group_by=model', admin);
    expect(all.data.map((b) => b.tenant)).toEqual(['acme', 'globex']);
    for (const b of all.data) {
      const e = expected[b.tenant as Tenant];
      expect({ jobs: b.jobs, deviceUs: Math.round(b.device_seconds * 1e6), promptTokens: b.prompt_tokens, completionTokens: b.completion_tokens }).toEqual(e);
    }
    const one = await usage('/v1/admin/usage?tenant=globex&group_by=day', admin);
    expect(one.data.every((b) => b.tenant === 'globex')).toBe(true);
    expect(summed(one)).toMatchObject(expected.globex ?? {});
  });

  it('refuses the admin route without the admin scope (403), and bad ranges and parameters (400, naming the parameter)', async () => {
    const forbidden = await get('/v1/admin/usage', auth('acme'));
    expect(forbidden.status).toBe(403);
    expect(((await forbidden.json()) as ErrorBody).error).toMatchObject({ code: 'forbidden', type: 'permission_error' });
    const refused = async (path: string, headers: Record<string, string>, param: string): Promise<void> => {
      const res = await get(path, headers);
      expect(res.status).toBe(400);
      expect(((await res.json()) as ErrorBody).error).toMatchObject({ code: 'invalid_request', type: 'invalid_request_error', param });
    };
    await refused('/v1/usage?from=2025-01-02&to=2025-01-01', auth('acme'), 'to');
    await refused('/v1/usage?from=2025-01-01&to=2025-03-01', auth('acme'), 'to');
    await refused('/v1/usage?from=last-week', auth('acme'), 'from');
    await refused('/v1/usage?group_by=hour,day', auth('acme'), 'group_by');
    // A tenant reads only its own usage: naming another is refused, not honoured.
    await refused('/v1/usage?tenant=globex', auth('acme'), 'tenant');
    await refused('/v1/admin/usage?start_time=10&end_time=5', admin, 'end_time');
    expect((await get('/v1/usage', {})).status).toBe(401);
  });
});
