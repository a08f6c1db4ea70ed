import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INFERENCE_JOB, RedisKeys, poolQueue } from '@fastvlm/contracts';
import { METRICS, metricNames } from '@fastvlm/observability';
import { auth, chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, ROOT, cleanupPrefix, startGateway, startWorker, stopWorker, testCacheDir, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';
import { count, declaredMetrics, scrape, value, workerHttpUrl, type Sample } from './prom';

interface Completion {
  choices: { message: { content: string } }[];
  usage: { prompt_tokens: number; completion_tokens: number };
}

describe('/metrics on the gateway and the worker move with traffic', () => {
  const prefix = uniquePrefix();
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let workerUrl: string;
  let queue: Queue;
  let image: Buffer;
  const chat = `/v1/chat/completions`;

  beforeAll(async () => {
    // One job at a time, so that a second job visibly waits behind a running one.
    [gw, worker, image] = await Promise.all([startGateway(prefix), startWorker(prefix, { WORKER_CONCURRENCY: '1' }), png(40, 30, 21)]);
    workerUrl = workerHttpUrl(worker);
    queue = new Queue(poolQueue('tiny-random'), { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: new RedisKeys(prefix).bull() });
  });
  afterAll(async () => {
    await queue?.close();
    await gw?.close();
    if (worker) await stopWorker(worker);
    await cleanupPrefix(prefix);
  });

  it('reports the loaded model and the live worker before any traffic', async () => {
    const [g, w] = await Promise.all([scrape(gw.url), scrape(workerUrl)]);
    expect(value(w, 'fastvlm_model_loaded', { model: 'tiny-random', dtype: 'fp32' })).toBe(1);
    expect(value(g, 'fastvlm_workers_alive', { model: 'tiny-random' })).toBe(1);
    expect(value(g, 'fastvlm_queue_depth', { state: 'wait' })).toBe(0);
    expect(value(g, 'fastvlm_queue_depth', { state: 'active' })).toBe(0);
    expect(value(g, 'fastvlm_queue_oldest_wait_seconds')).toBe(0);
  });

  it('counts a computed answer, a cached one and two rejections with the right values', async () => {
    const [g0, w0] = await Promise.all([scrape(gw.url), scrape(workerUrl)]);
    const body = chatBody(image, 'Count me in the metrics.', { max_tokens: 12 });
    const first = await postJson(`${gw.url}${chat}`, body);
    expect(first.status).toBe(200);
    const answer = (await first.json()) as Completion;
    expect((await postJson(`${gw.url}${chat}`, body)).headers.get('x-cache')).toBe('hit-l1');
    expect((await postJson(`${gw.url}${chat}`, body, { authorization: 'Bearer not-a-key-at-all-0000' })).status).toBe(401);
    expect((await postJson(`${gw.url}${chat}`, chatBody(Buffer.from('not an image at all'), 'q'))).status).toBe(400);
    const [g1, w1] = await Promise.all([scrape(gw.url), scrape(workerUrl)]);
    const d = (s0: Sample[], s1: Sample[], name: string, labels: Record<string, string> = {}) => count(s1, name, labels) - count(s0, name, labels);
    const route = { route: chat, method: 'POST' };

    expect(d(g0, g1, 'fastvlm_requests_total', { ...route, status: '200' })).toBe(2);
    expect(d(g0, g1, 'fastvlm_requests_total', { ...route, status: '401' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_requests_total', { ...route, status: '400' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_request_duration_seconds_count', route)).toBe(4);
    expect(d(g0, g1, 'fastvlm_cache_hits_total', { level: 'answer_l1' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_cache_misses_total', { level: 'answer_l1' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_cache_misses_total', { level: 'answer_l2' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_cache_hits_total', { level: 'answer_l2' })).toBe(0);
    expect(d(g0, g1, 'fastvlm_rejections_total', { reason: 'unauthorized' })).toBe(1);
    expect(d(g0, g1, 'fastvlm_rejections_total', { reason: 'invalid_image' })).toBe(1);

    // The worker ran the model once, for exactly the tokens the answer reports.
    expect(d(w0, w1, 'fastvlm_generation_tokens_total')).toBe(answer.usage.completion_tokens);
    expect(d(w0, w1, 'fastvlm_prompt_tokens_total')).toBe(answer.usage.prompt_tokens);
    expect(d(w0, w1, 'fastvlm_request_success_total', { finish_reason: 'length' })).toBe(1);
    for (const h of ['fastvlm_queue_wait_seconds', 'fastvlm_time_to_first_token_seconds', 'fastvlm_time_per_output_token_seconds', 'fastvlm_e2e_request_latency_seconds']) {
      expect(d(w0, w1, `${h}_count`), h).toBe(1);
      expect(d(w0, w1, `${h}_bucket`, { le: '+Inf' }), h).toBe(1);
    }
    // Time to first token never exceeds the whole request.
    expect(d(w0, w1, 'fastvlm_time_to_first_token_seconds_sum')).toBeLessThanOrEqual(d(w0, w1, 'fastvlm_e2e_request_latency_seconds_sum'));
    // One decoder step per generated token, each over at least one sequence.
    expect(d(w0, w1, 'fastvlm_batch_size_count')).toBeGreaterThanOrEqual(answer.usage.completion_tokens - 1);
    expect(d(w0, w1, 'fastvlm_batch_size_sum')).toBeGreaterThanOrEqual(d(w0, w1, 'fastvlm_batch_size_count'));
    expect(value(w1, 'fastvlm_jobs_running')).toBe(0);
  });

  it('serves the answer from L2 on another gateway and counts it there', async () => {
    const body = chatBody(image, 'Second gateway question.', { max_tokens: 6 });
    expect((await postJson(`${gw.url}${chat}`, body)).status).toBe(200);
    const other = await startGateway(prefix);
    try {
      expect((await postJson(`${other.url}${chat}`, body)).headers.get('x-cache')).toBe('hit-l2');
      const s = await scrape(other.url);
      expect(value(s, 'fastvlm_cache_misses_total', { level: 'answer_l1' })).toBe(1);
      expect(value(s, 'fastvlm_cache_hits_total', { level: 'answer_l2' })).toBe(1);
      expect(value(s, 'fastvlm_requests_total', { route: chat, method: 'POST', status: '200' })).toBe(1);
    } finally {
      await other.close();
    }
  });

  it('shows jobs waiting behind a running one in the queue depth and the oldest wait', async () => {
    const submit = async (q: string): Promise<string> => {
      const res = await postJson(`${gw.url}/v1/jobs`, chatBody(await png(24, 24, 9), q, { max_tokens: 2000 }));
      return ((await res.json()) as { id: string }).id;
    };
    const running = await submit('keep the worker busy');
    const waiting = await submit('wait behind it');
    try {
      const busy = await until('one job active and one waiting', async () => {
        const s = await scrape(gw.url);
        // Async jobs wait at their class's BullMQ priority (the prioritized set), not in the wait list.
        return count(s, 'fastvlm_queue_depth', { state: 'active' }) === 1 && count(s, 'fastvlm_queue_depth', { state: 'prioritized' }) === 1 ? s : undefined;
      });
      expect(value(busy, 'fastvlm_queue_oldest_wait_seconds')).toBeGreaterThan(0);
      const w = await until('the worker to count its running job', async () => {
        const s = await scrape(workerUrl);
        return value(s, 'fastvlm_jobs_running') === 1 ? s : undefined;
      });
      expect(value(w, 'fastvlm_jobs_running')).toBe(1);
    } finally {
      for (const id of [waiting, running]) await fetch(`${gw.url}/v1/jobs/${id}`, { method: 'DELETE', headers: auth() });
    }
    await until('the queue to drain', async () => {
      const s = await scrape(gw.url);
      return count(s, 'fastvlm_queue_depth', { state: 'active' }) + count(s, 'fastvlm_queue_depth', { state: 'prioritized' }) === 0;
    });
  });

  it('counts jobs that fail for good by reason', async () => {
    const before = await scrape(workerUrl);
    // A producer out of step with the worker, and a job whose record has gone.
    await queue.add(INFERENCE_JOB, { id: 'job_badbadbadbad' });
    const orphan = {
      id: 'job_orphanorphanorphan', tenant: 'acme', model: 'tiny-random', modelRevision: null,
      image: { sha256: 'a'.repeat(64), bytes: 10 }, question: 'q', params: { maxTokens: 2, temperature: 0, topP: 1, stop: [] }, cacheKey: null, createdAt: Date.now(),
    };
    await queue.add(INFERENCE_JOB, orphan, { jobId: orphan.id });
    const after = await until('both failures to be counted', async () => {
      const s = await scrape(workerUrl);
      return count(s, 'fastvlm_jobs_failed_total') - count(before, 'fastvlm_jobs_failed_total') >= 2 ? s : undefined;
    });
    expect(count(after, 'fastvlm_jobs_failed_total', { reason: 'invalid_job' }) - count(before, 'fastvlm_jobs_failed_total', { reason: 'invalid_job' })).toBe(1);
    expect(count(after, 'fastvlm_jobs_failed_total', { reason: 'not_found' }) - count(before, 'fastvlm_jobs_failed_total', { reason: 'not_found' })).toBe(1);
  });

  it('counts a worker that cannot load its model, on the gateway', async () => {
    const missing = join(ROOT, '.cache', 'no-such-model-here');
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'apps', 'worker', 'main.js')], {
      env: { PATH: process.env.PATH ?? '', REDIS_URL, FASTVLM_REDIS_PREFIX: prefix, FASTVLM_MODEL: missing, FASTVLM_CACHE_DIR: testCacheDir(), HF_HUB_OFFLINE: '1', WORKER_HTTP_PORT: '0', LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).not.toBe(0);
    expect(value(await scrape(gw.url), 'fastvlm_model_load_failures_total', { model: missing })).toBe(1);
  });

  it('exports every metric of the catalogue, and no fastvlm_ metric outside it', async () => {
    const [g, w] = await Promise.all([declaredMetrics(gw.url), declaredMetrics(workerUrl)]);
    for (const name of metricNames('gateway')) expect(g.has(name), `gateway ${name}`).toBe(true);
    for (const name of metricNames('worker')) expect(w.has(name), `worker ${name}`).toBe(true);
    const known = new Set<string>(Object.values(METRICS).map((m) => m.name));
    for (const name of [...g, ...w].filter((n) => n.startsWith('fastvlm_'))) expect(known.has(name), name).toBe(true);
  });
});
