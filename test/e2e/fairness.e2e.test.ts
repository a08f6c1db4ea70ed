import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { workClassOf } from '../../apps/gateway/src/inference/inference.service';
import { auth, chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface JobView {
  id: string;
  status: string;
}

describe('classes of work and fair share between tenants', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let redis: Redis;
  let image: Buffer;
  const startedAt = async (id: string): Promise<number | null> => {
    const v = await redis.hget(keys.job(id), 'started_at');
    return v === null ? null : Number(v);
  };
  const submit = async (tenant: 'acme' | 'globex', q: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await postJson(`${gw.url}/v1/jobs`, chatBody(image, q, { max_tokens: 24, ...extra }), auth(tenant));
    expect(res.status).toBe(202);
    return ((await res.json()) as JobView).id;
  };

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    // One slot, a short pool queue: the order in which jobs start is the order the gateway chose.
    const limits = { TENANT_MAX_INFLIGHT_JOBS: '1000', TENANT_MAX_QUEUED_JOBS: '1000', TENANT_TOKENS_PER_MIN: '1000000', RATE_LIMIT_KEY_RPM: '100000', RATE_LIMIT_TENANT_RPM: '100000' };
    [gw, worker, image] = await Promise.all([
      startGateway(prefix, { ...limits, FAIR_DISPATCH_TARGET: '2', SYNC_TIMEOUT_MS: '120000'}),
      startWorker(prefix, { WORKER_CONCURRENCY: '1', FASTVLM_MAX_BATCH: '1' }),
      png(32, 32, 17),
    ]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker, 'SIGKILL');
    await cleanupPrefix(prefix);
    redis.disconnect();
  });

  it('runs a small tenant\'s jobs within a round or two of its arrival behind another tenant\'s flood, not after it', async () => {
    const flood: string[] = [];
    for (let i = 0; i < 30; i++) flood.push(await submit('acme', `flood ${i}`));
    await until('the flood to be running', async () => (await startedAt(flood[0] ?? '')) !== null);
    // Sent together, as one client's burst: their tags are all drawn at about the same virtual time.
    const small = await Promise.all([0, 1, 2].map((i) => submit('globex', `small ${i}`)));
    await until('the small tenant\'s jobs to start', async () => (await Promise.all(small.map(startedAt))).every((t) => t !== null), 60_000);
    const smallStarts = (await Promise.all(small.map(startedAt))) as number[];
    const floodStarts = (await Promise.all(flood.map(startedAt))).filter((t): t is number => t !== null);
    // The flood's jobs that started before the small tenant's last one: the one running and those already
    // in the pool's queue (its target, 2) when it arrived, then one of the flood's between each of its own
    // (tags tie: the order of a tie is the ids'), and a job or two the dispatcher moved while they arrived.
    const ahead = floodStarts.filter((t) => t < Math.max(...smallStarts)).length;
    expect(ahead).toBeLessThanOrEqual(1 + 2 + small.length + 2);
    for (const id of flood) await fetch(`${gw.url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth('acme') });
  }, 120_000);

  it('answers a chat completion ahead of queued async work', async () => {
    const backlog: string[] = [];
    for (let i = 0; i < 12; i++) backlog.push(await submit('acme', `bulk ${i}`, { max_tokens: 40 }));
    await until('the backlog to be running', async () => (await startedAt(backlog[0] ?? '')) !== null);
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'a person is waiting', { max_tokens: 4 }), auth('globex'));
    expect(res.status).toBe(200);
    // Interactive work jumped the queue: most of the backlog has not started yet.
    const notStarted = (await Promise.all(backlog.map(startedAt))).filter((t) => t === null).length;
    expect(notStarted).toBeGreaterThan(6);
    for (const id of backlog) await fetch(`${gw.url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth('acme') });
  }, 120_000);

  it('records the class a job runs at: low priority and the tenant\'s cap move it down', async () => {
    const low = await submit('globex', 'low please', { priority: 'low', max_tokens: 2 });
    await until('the low-priority job to end', async () => (await redis.hget(keys.job(low), 'status')) === 'succeeded', 60_000);
    const raw = await redis.hget(`${keys.bull()}:inference-tiny-random:${low}`, 'data');
    expect((JSON.parse(raw ?? '{}') as { workClass?: string }).workClass).toBe('batch');
    expect(workClassOf('sync', false, 'interactive')).toBe('interactive');
    expect(workClassOf('sync', true, 'interactive')).toBe('async');
    expect(workClassOf('async', false, 'interactive')).toBe('async');
    expect(workClassOf('async', true, 'interactive')).toBe('batch');
    expect(workClassOf('sync', false, 'batch')).toBe('batch');
    const bad = await postJson(`${gw.url}/v1/jobs`, chatBody(image, 'q'), { ...auth('globex'), 'x-priority': 'urgent' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string; param: string } }).error).toMatchObject({ message: 'The X-Priority header is "low" or "normal".', param: 'X-Priority' });
  }, 90_000);
});
