import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, type InferenceJobData, poolQueue } from '@fastvlm/contracts';
import { auth, chatBody, png, postJson, readSse } from '../support/requests';
import { cleanupPrefix, REDIS_URL, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface JobView {
  id: string;
  object: string;
  status: string;
  created_at: number;
  result: { choices: { message: { content: string } }[]; usage: { completion_tokens: number } } | null;
  error: { code: string; message: string } | null;
}

describe('async jobs API', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let image: Buffer;
  const jobs = (): string => `${gw.url}/v1/jobs`;
  const getJob = async (id: string, tenant: 'acme' | 'globex' = 'acme'): Promise<Response> => fetch(`${jobs()}/${id}`, { headers: auth(tenant) });
  const finished = (id: string): Promise<JobView> =>
    until(`job ${id} to finish`, async () => {
      const j = (await (await getJob(id)).json()) as JobView;
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : undefined;
    });

  beforeAll(async () => {
    [gw, worker, image] = await Promise.all([startGateway(prefix), startWorker(prefix), png(64, 64, 9)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('accepts a JSON job with 202 and Location, and completes it with the same answer as the sync API', async () => {
    const body = chatBody(image, 'async question', { max_tokens: 10 });
    const res = await postJson(jobs(), body);
    expect(res.status).toBe(202);
    const created = (await res.json()) as JobView;
    expect(created.id).toMatch(/^job_[A-Za-z0-9_-]{22}$/);
    expect(['queued', 'running', 'succeeded']).toContain(created.status);
    expect(created.created_at).toBeGreaterThan(1_700_000_000);
    expect(res.headers.get('location')).toBe(`/v1/jobs/${created.id}`);
    const done = await finished(created.id);
    expect(done.status).toBe('succeeded');
    expect(done.result?.usage.completion_tokens).toBe(10);
    const sync = (await (await postJson(`${gw.url}/v1/chat/completions`, body)).json()) as { choices: { message: { content: string } }[] };
    expect(done.result?.choices[0]?.message.content).toBe(sync.choices[0]?.message.content);
  });

  it('gives each of many jobs submitted together a job of its own, carrying its own tenant and question', async () => {
    // Jobs admitted together share their Redis commands and go to the queue in one addBulk: each reply must still name its own job.
    const tenants = ['acme', 'globex'] as const;
    const sent = Array.from({ length: 16 }, (_, i) => ({ tenant: tenants[i % 2] ?? 'acme', question: `burst question ${i}` }));
    const replies = await Promise.all(sent.map((s) => postJson(jobs(), chatBody(image, s.question, { max_tokens: 2 }), auth(s.tenant))));
    expect(replies.map((r) => r.status)).toEqual(sent.map(() => 202));
    const ids = await Promise.all(replies.map(async (r) => ((await r.json()) as JobView).id));
    expect(new Set(ids).size).toBe(sent.length);
    const redis = new Redis(REDIS_URL);
    const queue = new Queue<InferenceJobData>(poolQueue('tiny-random'), { connection: redis, prefix: new RedisKeys(prefix).bull() });
    try {
      for (const [i, id] of ids.entries()) {
        const job = await queue.getJob(id);
        expect({ tenant: job?.data.tenant, question: job?.data.question, record: await redis.hget(new RedisKeys(prefix).job(id), 'tenant') }).toEqual({
          tenant: sent[i]?.tenant,
          question: sent[i]?.question,
          record: sent[i]?.tenant,
        });
      }
    } finally {
      await queue.close();
      redis.disconnect();
    }
    for (const [i, id] of ids.entries()) expect((await getJob(id, sent[i]?.tenant)).status).toBe(200);
  });

  it('accepts a multipart image + question', async () => {
    const form = new FormData();
    form.append('image', new Blob([image], { type: 'image/png' }), 'photo.png');
    form.append('question', 'multipart question');
    form.append('max_tokens', '5');
    const res = await fetch(jobs(), { method: 'POST', headers: auth(), body: form });
    expect(res.status).toBe(202);
    const done = await finished(((await res.json()) as JobView).id);
    expect(done.status).toBe('succeeded');
    expect(done.result?.usage.completion_tokens).toBe(5);
  });

  it('rejects a multipart form without an image, or with text as the image', async () => {
    const noImage = new FormData();
    noImage.append('question', 'where is the image?');
    expect((await fetch(jobs(), { method: 'POST', headers: auth(), body: noImage })).status).toBe(400);
    const textImage = new FormData();
    textImage.append('image', new Blob(['not an image at all']), 'x.png');
    textImage.append('question', 'q');
    const res = await fetch(jobs(), { method: 'POST', headers: auth(), body: textImage });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_image');
  });

  it('hides a job from other tenants: 404 for GET, DELETE and events', async () => {
    const created = (await (await postJson(jobs(), chatBody(image, 'private', { max_tokens: 3 }))).json()) as JobView;
    expect((await getJob(created.id, 'globex')).status).toBe(404);
    expect((await fetch(`${jobs()}/${created.id}`, { method: 'DELETE', headers: auth('globex') })).status).toBe(404);
    expect((await fetch(`${jobs()}/${created.id}/events`, { headers: auth('globex') })).status).toBe(404);
    expect((await getJob(created.id)).status).toBe(200);
    expect((await getJob('job_doesNotExist0000000000')).status).toBe(404);
    expect((await getJob('../../etc/passwd')).status).toBe(404);
  });

  it('streams status and tokens as SSE, and resumes after Last-Event-ID', async () => {
    const created = (await (await postJson(jobs(), chatBody(image, 'events please', { max_tokens: 8 }))).json()) as JobView;
    const all = await readSse(await fetch(`${jobs()}/${created.id}/events`, { headers: auth() }));
    expect(all[0]?.event).toBe('status');
    expect(JSON.parse(all[0]?.data ?? '{}')).toEqual({ status: 'queued' });
    expect(all.map((e) => e.event)).toContain('token');
    const last = all.at(-1);
    expect(last?.event).toBe('done');
    const completion = JSON.parse(last?.data ?? '{}') as { choices: { message: { content: string } }[] };
    const tokens = all.filter((e) => e.event === 'token').map((e) => JSON.parse(e.data) as { index: number; text: string });
    expect(tokens.map((t) => t.text).join('')).toBe(completion.choices[0]?.message.content);
    expect(all.every((e) => e.id !== undefined)).toBe(true);

    const cut = 3;
    const resumed = await readSse(await fetch(`${jobs()}/${created.id}/events`, { headers: { ...auth(), 'last-event-id': all[cut - 1]?.id ?? '' } }));
    expect(resumed.map((e) => e.id)).toEqual(all.slice(cut).map((e) => e.id));
    expect((await fetch(`${jobs()}/${created.id}/events`, { headers: { ...auth(), 'last-event-id': 'garbage' } })).status).toBe(400);
  });

  it('returns the same job for a repeated Idempotency-Key and body, and 409 for another body', async () => {
    const headers = { ...auth(), 'idempotency-key': `key-${prefix}` };
    const body = chatBody(image, 'idempotent', { max_tokens: 4 });
    const first = await postJson(jobs(), body, headers);
    const second = await postJson(jobs(), body, headers);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    const a = (await first.json()) as JobView;
    const b = (await second.json()) as JobView;
    expect(b.id).toBe(a.id);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    const conflict = await postJson(jobs(), chatBody(image, 'another body', { max_tokens: 4 }), headers);
    expect(conflict.status).toBe(409);
    expect(((await conflict.json()) as { error: { code: string } }).error.code).toBe('idempotency_conflict');
    // The same key is another tenant's own namespace.
    const globex = await postJson(jobs(), chatBody(image, 'another body', { max_tokens: 4 }), { ...auth('globex'), 'idempotency-key': `key-${prefix}` });
    expect(globex.status).toBe(202);
  });

  it('cancels a running job: it stops early, its status and events say cancelled', async () => {
    const created = (await (await postJson(jobs(), chatBody(image, 'a very long answer', { max_tokens: 4096 }))).json()) as JobView;
    await until('the job to run', async () => ((await (await getJob(created.id)).json()) as JobView).status === 'running');
    const res = await fetch(`${jobs()}/${created.id}`, { method: 'DELETE', headers: auth() });
    expect(res.status).toBe(200);
    expect(((await res.json()) as JobView).status).toBe('cancelled');
    const events = await readSse(await fetch(`${jobs()}/${created.id}/events`, { headers: auth() }));
    expect(events.at(-1)?.event).toBe('status');
    expect(JSON.parse(events.at(-1)?.data ?? '{}')).toEqual({ status: 'cancelled' });
    await until('the worker to log the cancellation', () => worker.output().includes(`"jobId":"${created.id}","outcome":"cancelled"`));
    expect(events.filter((e) => e.event === 'token').length).toBeLessThan(4096);
    const after = (await (await getJob(created.id)).json()) as JobView;
    expect(after.status).toBe('cancelled');
    expect(after.result).toBeNull();
  });

  it('leaves a finished job unchanged when asked to cancel it', async () => {
    const created = (await (await postJson(jobs(), chatBody(image, 'quick one', { max_tokens: 2 }))).json()) as JobView;
    await finished(created.id);
    const res = await fetch(`${jobs()}/${created.id}`, { method: 'DELETE', headers: auth() });
    expect(((await res.json()) as JobView).status).toBe('succeeded');
  });
});

describe('cancelling a queued job', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;

  beforeAll(async () => {
    gw = await startGateway(prefix);
  });
  afterAll(async () => {
    await gw?.close();
    await cleanupPrefix(prefix);
  });

  it('is immediate, and takes the job off the queue, so a worker that starts later never runs it', async () => {
    const image = await png(16, 16, 2);
    const created = (await (await postJson(`${gw.url}/v1/jobs`, chatBody(image, 'never run', { max_tokens: 4 }))).json()) as JobView;
    expect(created.status).toBe('queued');
    const cancelled = (await (await fetch(`${gw.url}/v1/jobs/${created.id}`, { method: 'DELETE', headers: auth() })).json()) as JobView;
    expect(cancelled.status).toBe('cancelled');
    const redis = new Redis(REDIS_URL);
    const queue = new Queue<InferenceJobData>(poolQueue('tiny-random'), { connection: redis, prefix: new RedisKeys(prefix).bull() });
    try {
      expect(await queue.getJob(created.id)).toBeUndefined();
    } finally {
      await queue.close();
      redis.disconnect();
    }
    const worker = await startWorker(prefix);
    try {
      expect(worker.output()).not.toContain(created.id);
      const after = (await (await fetch(`${gw.url}/v1/jobs/${created.id}`, { headers: auth() })).json()) as JobView;
      expect(after.status).toBe('cancelled');
    } finally {
      await stopWorker(worker);
    }
  });
});
