import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import type { ConsoleOverview } from '../../apps/gateway/src/console/overview-types';
import { scrape, value, workerHttpUrl } from '../observability/prom';
import { startTestScaler } from '../scaler/harness';
import { auth, chatBody, png, postJson, readSse } from '../support/requests';
import { API_KEYS, REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface JobView {
  id: string;
  status: string;
  model: string;
  result?: { model: string; choices: { message: { content: string } }[] };
}

/**
 * Two model pools behind one gateway: `tiny-random` and `tiny-random@other`
 * (the same generated weights under two ids), each with a real worker
 * process of its own, and `tiny-random@idle`, configured with no worker.
 */
describe('model pools: one gateway routing by model to each pool’s workers', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  const MODELS = 'tiny-random,tiny-random@other,tiny-random@idle';
  const ALIASES = 'fast=tiny-random,second=tiny-random@other';
  let gw: GatewayHandle;
  let main: WorkerProcess;
  let other: WorkerProcess;
  let image: Buffer;
  let redis: Redis;

  beforeAll(async () => {
    [main, other, image] = await Promise.all([startWorker(prefix), startWorker(prefix, { FASTVLM_MODEL: 'tiny-random@other' }), png(64, 48, 41)]);
    gw = await startGateway(prefix, { FASTVLM_MODELS: MODELS, FASTVLM_MODEL_ALIASES: ALIASES });
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
    await Promise.all([main, other].filter(Boolean).map((w) => stopWorker(w)));
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  const jobs = (path = ''): string => `${gw.url}/v1/jobs${path}`;
  /** Submits an async job; `model` undefined leaves the field out of the body. */
  const submit = async (model: string | undefined, question: string): Promise<JobView> => {
    const body = chatBody(image, question, { max_tokens: 4 });
    if (model === undefined) delete body.model;
    else body.model = model;
    const res = await postJson(jobs(), body);
    expect(res.status).toBe(202);
    return (await res.json()) as JobView;
  };
  const finished = (id: string): Promise<JobView> =>
    until(`job ${id} to finish`, async () => {
      const view = (await (await fetch(jobs(`/${id}`), { headers: auth() })).json()) as JobView;
      return view.status === 'succeeded' || view.status === 'failed' ? view : undefined;
    });
  /** Whether a worker logged that it ran the job (its `job finished` line names the id). */
  const ran = (w: WorkerProcess, id: string): boolean => w.output().split('\n').some((l) => l.includes('"job finished"') && l.includes(`"jobId":"${id}"`));

  it('lists every served model with whether a worker is ready, then the aliases, in a shape the openai client parses', async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: API_KEYS.acme, maxRetries: 0 });
    const listed = [];
    for await (const m of client.models.list()) listed.push(m);
    expect(listed).toEqual([
      { id: 'tiny-random', object: 'model', created: 0, owned_by: 'fastvlm-serving', ready: true },
      { id: 'tiny-random@other', object: 'model', created: 0, owned_by: 'fastvlm-serving', ready: true },
      { id: 'tiny-random@idle', object: 'model', created: 0, owned_by: 'fastvlm-serving', ready: false },
      { id: 'fast', object: 'model', created: 0, owned_by: 'fastvlm-serving', ready: true, alias_of: 'tiny-random' },
      { id: 'second', object: 'model', created: 0, owned_by: 'fastvlm-serving', ready: true, alias_of: 'tiny-random@other' },
    ]);
  });

  it('runs a job on the pool of the model it names, one without a model on the default pool, and an alias on its model’s pool', async () => {
    const [toOther, toDefault, toAlias, toFast] = await Promise.all([
      submit('tiny-random@other', 'which pool? other'),
      submit(undefined, 'which pool? default'),
      submit('second', 'which pool? alias'),
      submit('fast', 'which pool? fast'),
    ]);
    // The job is the model's from the start: an alias is resolved at the gateway.
    expect([toOther.model, toDefault.model, toAlias.model, toFast.model]).toEqual(['tiny-random@other', 'tiny-random', 'tiny-random@other', 'tiny-random']);
    const done = await Promise.all([toOther, toDefault, toAlias, toFast].map((j) => finished(j.id)));
    expect(done.map((j) => [j.status, j.result?.model])).toEqual([
      ['succeeded', 'tiny-random@other'],
      ['succeeded', 'tiny-random'],
      ['succeeded', 'tiny-random@other'],
      ['succeeded', 'tiny-random'],
    ]);
    // Each ran on its own pool's worker process, never on the other one (a worker logs a job a moment after storing its result).
    const logged = [toOther, toDefault, toAlias, toFast];
    await until('each worker to log the jobs it ran', () => logged.every((j) => ran(main, j.id) || ran(other, j.id)));
    expect(logged.map((j) => [ran(main, j.id), ran(other, j.id)])).toEqual([
      [false, true],
      [true, false],
      [false, true],
      [true, false],
    ]);
  });

  it('answers a chat completion, sync and streamed, naming the model that ran when the request used an alias', async () => {
    const sync = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'alias, sync', { model: 'second', max_tokens: 3 }));
    expect(sync.status).toBe(200);
    expect(((await sync.json()) as { model: string }).model).toBe('tiny-random@other');
    const streamed = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'alias, streamed', { model: 'second', max_tokens: 3, stream: true }));
    expect(streamed.status).toBe(200);
    const chunks = (await readSse(streamed)).filter((e) => e.data !== '[DONE]').map((e) => JSON.parse(e.data) as { model: string });
    expect(chunks.length).toBeGreaterThan(1);
    expect(new Set(chunks.map((c) => c.model))).toEqual(new Set(['tiny-random@other']));
  });

  it('refuses an unknown model with 404 model_not_found, listing the served models and the aliases', async () => {
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(image, 'q', { model: 'gpt-4o' }));
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: {
        message:
          'The model "gpt-4o" is not served here; served models: tiny-random, tiny-random@other, tiny-random@idle; aliases: fast → tiny-random, second → tiny-random@other.',
        type: 'not_found_error',
        code: 'model_not_found',
        param: 'model',
      },
    });
  });

  it('queues a job of a pool with no worker on that pool’s queue only, and a cancel takes it off that queue', async () => {
    const queueOf = (model: string): Queue => new Queue(poolQueue(model), { connection: redis, prefix: keys.bull() });
    const [idle, mainQueue, otherQueue] = ['tiny-random@idle', 'tiny-random', 'tiny-random@other'].map(queueOf) as [Queue, Queue, Queue];
    try {
      const job = await submit('tiny-random@idle', 'nobody serves this pool yet');
      expect(job).toMatchObject({ status: 'queued', model: 'tiny-random@idle' });
      // The pool's fair dispatcher moves the async job into the pool's queue, at the async priority.
      const queued = await until('the job to reach its pool\'s queue', async () => (await idle.getJob(job.id)) ?? undefined);
      expect(queued.data).toMatchObject({ id: job.id, model: 'tiny-random@idle', workClass: 'async' });
      expect(await mainQueue.getJob(job.id)).toBeUndefined();
      expect(await otherQueue.getJob(job.id)).toBeUndefined();
      // The gateway's queue gauges are per pool: this one waits on the idle pool's queue.
      const depth = async (model: string): Promise<number | undefined> =>
        value(await scrape(gw.url), 'fastvlm_queue_depth', { model, queue: poolQueue(model), state: 'prioritized' });
      expect(await depth('tiny-random@idle')).toBe(1);
      expect(await depth('tiny-random')).toBe(0);

      const res = await fetch(jobs(`/${job.id}`), { method: 'DELETE', headers: auth() });
      expect(res.status).toBe(200);
      expect(((await res.json()) as JobView).status).toBe('cancelled');
      expect(await idle.getJob(job.id)).toBeUndefined();
      expect(await idle.getJobCounts('wait', 'prioritized', 'delayed')).toEqual({ wait: 0, prioritized: 0, delayed: 0 });
      expect(await depth('tiny-random@idle')).toBe(0);
    } finally {
      // The connection is the test's own: closing the queues leaves it open.
      await Promise.all([idle, mainQueue, otherQueue].map((q) => q.close()));
    }
  });

  it('shows each pool in the console overview, with the decision the scaler made for its queue', async () => {
    // The scaler, configured with the gateway's models, watches each pool's queue on its own.
    const scaler = await startTestScaler(prefix, { FASTVLM_MODELS: MODELS, FASTVLM_MODEL_ALIASES: ALIASES, SCALER_TICK_MS: '100' });
    try {
      const read = async (): Promise<ConsoleOverview> => (await (await fetch(`${gw.url}/v1/console/overview`, { headers: auth() })).json()) as ConsoleOverview;
      const o = await until('a decision for every pool', async () => {
        const view = await read();
        return view.pools.every((p) => p.autoscaler !== null) ? view : undefined;
      });
      expect(o.model).toBe('tiny-random');
      expect(o.queue.name).toBe('inference-tiny-random');
      expect(o.autoscaler?.queue).toBe('inference-tiny-random');
      expect(o.pools.map((p) => [p.model, p.aliases, p.configured, p.workers, p.queue, p.autoscaler?.queue, p.autoscaler?.scaled_object, p.autoscaler?.signals.ready])).toEqual([
        ['tiny-random', ['fast'], true, 1, 'inference-tiny-random', 'inference-tiny-random', 'default', 1],
        ['tiny-random@other', ['second'], true, 1, 'inference-tiny-random~40other', 'inference-tiny-random~40other', 'default', 1],
        ['tiny-random@idle', [], true, 0, 'inference-tiny-random~40idle', 'inference-tiny-random~40idle', 'default', 0],
      ]);
    } finally {
      await scaler.close();
    }
  });

  it('labels every serving metric with the model: each worker’s with its own, the gateway’s cache lookups with the pool’s', async () => {
    const w = await scrape(workerHttpUrl(other));
    expect(value(w, 'fastvlm_request_success_total', { model: 'tiny-random@other' })).toBeGreaterThanOrEqual(1);
    expect(value(w, 'fastvlm_request_success_total', { model: 'tiny-random' })).toBeUndefined();
    expect(value(w, 'fastvlm_queue_wait_seconds_count', { model: 'tiny-random@other' })).toBeGreaterThanOrEqual(1);
    const g = await scrape(gw.url);
    // Every configured model's cache series exists, those of the pool with no worker too.
    expect(value(g, 'fastvlm_cache_misses_total', { model: 'tiny-random@other', level: 'answer_l2' })).toBeGreaterThanOrEqual(1);
    expect(value(g, 'fastvlm_cache_misses_total', { model: 'tiny-random@idle', level: 'answer_l2' })).toBe(0);
    expect(value(g, 'fastvlm_workers_alive', { model: 'tiny-random@idle' })).toBe(0);
    expect(value(g, 'fastvlm_workers_alive', { model: 'tiny-random@other' })).toBe(1);
  });
});
