import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, RedisKeys, type DecodingParams, type InferenceJobData, type JobEvent } from '@fastvlm/contracts';
import type { GenerateRequest, GenerateResult } from '@fastvlm/pipeline';
import { AnswerCache } from './answer-cache';
import { ImageStore, sha256Hex } from './image-store';
import { JobStore } from './job-store';
import { JobFailure, processInferenceJob, type InferenceEngine, type ProcessDeps } from './process-job';
import { cleanupPrefix, testPrefix, TEST_REDIS_URL } from './test-redis';
import { OwnRedis } from './test-redis-server';
import { freeTcpPort } from './test-ports';
import { UsageStore, hourOf, type UsageEntry, type UsageTotals } from './usage-store';

const IMAGE = Buffer.from('not decoded by the fake engine');
const PARAMS: DecodingParams = { maxTokens: 40, temperature: 0, topP: 1, stop: [] };

/** Device time the fake engine charges: its prefill, then each step. */
const PREFILL_MS = 5.25;
const STEP_MS = 2.5;

/**
 * Stands in for the model: one token per decode step (a timer tick, as a real
 * step yields to the event loop), stopping at the signal as the engine does.
 * `beforeToken` runs before each token is emitted, to inject a fault mid-run.
 * It charges PREFILL_MS of device time, then STEP_MS per step, as the engine reports it.
 */
class FakeEngine implements InferenceEngine {
  readonly info = { id: 'fake-model', revision: 'rev-1', dtype: 'fp32', device: 'cpu', dir: '/nowhere' };
  readonly requests: GenerateRequest[] = [];
  readonly results: GenerateResult[] = [];
  /** Tokens emitted, by question. */
  readonly emitted = new Map<string, number>();
  beforeToken: (question: string, index: number) => Promise<void> | void = () => undefined;

  async generate(req: GenerateRequest): Promise<GenerateResult> {
    this.requests.push(req);
    let text = '';
    let n = 0;
    let finishReason: GenerateResult['finishReason'] = 'length';
    let deviceMs = PREFILL_MS;
    req.onDeviceTime?.(PREFILL_MS);
    for (let i = 0; i < req.params.maxTokens; i++) {
      await new Promise((r) => setTimeout(r, 1));
      deviceMs += STEP_MS;
      req.onDeviceTime?.(STEP_MS);
      await this.beforeToken(req.question, i);
      if (req.signal?.aborted) {
        finishReason = 'cancelled';
        break;
      }
      const t = `t${i} `;
      text += t;
      n += 1;
      this.emitted.set(req.question, n);
      req.onToken?.({ index: i, text: t });
    }
    const result: GenerateResult = {
      text,
      finishReason,
      usage: { promptTokens: 5, completionTokens: n },
      tokenIds: [],
      timings: { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: 0, deviceMs },
    };
    this.results.push(result);
    return result;
  }
}

interface Env {
  redis: Redis;
  keys: RedisKeys;
  store: JobStore;
  images: ImageStore;
  usage: UsageStore;
  deps: (engine: InferenceEngine, answers?: AnswerCache) => ProcessDeps;
}

function env(redis: Redis, prefix: string): Env {
  const keys = new RedisKeys(prefix);
  const store = new JobStore(redis, keys, 60);
  const images = new ImageStore(redis, keys, 60);
  const answers = new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60 });
  const usage = new UsageStore(redis, keys, { retentionDays: 1 });
  return { redis, keys, store, images, usage, deps: (engine, a = answers) => ({ store, images, answers: a, engine, now: () => Date.now(), usage }) };
}

async function queued(e: Env, id: string, question: string, params: Partial<InferenceJobData> = {}): Promise<InferenceJobData> {
  const sha = sha256Hex(IMAGE);
  await e.store.create({ id, tenant: 'acme', model: 'fake-model', createdAt: Date.now() });
  await e.images.write(IMAGE, sha);
  return {
    id,
    tenant: 'acme',
    model: 'fake-model',
    modelRevision: 'rev-1',
    image: { sha256: sha, bytes: IMAGE.length },
    question,
    params: PARAMS,
    cacheKey: null,
    createdAt: Date.now(),
    ...params,
  };
}

const attempt = (maxAttempts = 1, claim = 1) => ({ attemptsMade: claim - 1, maxAttempts, signal: new AbortController().signal, claim });

async function events(e: Env, id: string): Promise<JobEvent[]> {
  return (await e.redis.xrange(e.keys.events(id), '-', '+')).map(([, f]) => JSON.parse(f[1] ?? '{}') as JobEvent);
}

describe('processInferenceJob on real Redis', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let e: Env;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    e = env(redis, prefix);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  it('ends the job when fetching its image fails: queued again for a retry, failed on the last attempt', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_image_fails', 'q');
    // A value of the wrong type makes the image read fail as a broken Redis would.
    await redis.del(e.keys.image(data.image.sha256));
    await redis.hset(e.keys.image(data.image.sha256), 'not', 'bytes');
    await expect(processInferenceJob(e.deps(engine), data, attempt(2, 1))).rejects.toBeInstanceOf(JobFailure);
    expect((await e.store.get(data.id))?.status).toBe('queued');
    const last = processInferenceJob(e.deps(engine), data, attempt(2, 2));
    await expect(last).rejects.toMatchObject({ kind: 'transient', error: { code: 'internal' } });
    const rec = await e.store.get(data.id);
    expect(rec?.status).toBe('failed');
    expect(rec?.error?.message).toContain('WRONGTYPE');
    expect(engine.requests).toHaveLength(0);
  });

  it('aborts only the sequence whose token write is refused; the others finish', async () => {
    const engine = new FakeEngine();
    const broken = await queued(e, 'job_write_refused', 'broken');
    const healthy = await queued(e, 'job_write_fine', 'healthy');
    engine.beforeToken = async (question, index) => {
      // The broken job's event stream turns into a value XADD refuses, from its first token on.
      if (question === 'broken' && index === 0) {
        await redis.del(e.keys.events(broken.id));
        await redis.set(e.keys.events(broken.id), 'not a stream');
      }
    };
    const [a, b] = await Promise.allSettled([
      processInferenceJob(e.deps(engine), broken, attempt(3)),
      processInferenceJob(e.deps(engine), healthy, attempt(3)),
    ]);
    expect(a.status).toBe('rejected');
    const failure = (a as PromiseRejectedResult).reason as JobFailure;
    expect(failure).toBeInstanceOf(JobFailure);
    expect(failure.kind).toBe('transient');
    expect(failure.error.code).toBe('service_unavailable');
    expect(failure.error.message).toContain('WRONGTYPE');
    expect(engine.emitted.get('broken') ?? 0).toBeLessThan(PARAMS.maxTokens);
    expect(b).toEqual({ status: 'fulfilled', value: 'succeeded' });
    expect(engine.emitted.get('healthy')).toBe(PARAMS.maxTokens);
    const rec = await e.store.get(healthy.id);
    expect(rec?.result?.usage.completionTokens).toBe(PARAMS.maxTokens);
  });

  it('stops generating when a token write finds the job cancelled, even if the cancel message never arrived', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_cancel_unheard', 'q', { params: { ...PARAMS, maxTokens: 400 } });
    engine.beforeToken = async (_q, index) => {
      if (index === 3) await e.store.cancel(data.id, Date.now());
    };
    // The run's signal never aborts: this worker missed the broadcast.
    expect(await processInferenceJob(e.deps(engine), data, attempt())).toBe('cancelled');
    expect(engine.emitted.get('q') ?? 0).toBeLessThan(20);
  });

  it('stops a run that lost its claim, writes nothing more for it, and leaves the job to the run that replaced it', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_claim_lost', 'q', { params: { ...PARAMS, maxTokens: 400 } });
    engine.beforeToken = async (_q, index) => {
      // Another worker claims the job (run 2) while run 1 still decodes.
      if (index === 3) expect(await e.store.start(data.id, Date.now(), 2)).toMatchObject({ ok: true, attempt: 2 });
    };
    expect(await processInferenceJob(e.deps(engine), data, attempt(3, 1))).toBe('already-finished');
    expect(engine.emitted.get('q') ?? 0).toBeLessThan(20);
    const rec = await e.store.get(data.id);
    expect(rec).toMatchObject({ status: 'running', attempt: 2 });
    const written = await events(e, data.id);
    expect(written.filter((ev) => ev.type === 'done')).toHaveLength(0);
    const tokens = written.filter((ev) => ev.type === 'token');
    expect(tokens.map((t) => t.index)).toEqual([0, 1, 2]);
    expect(tokens.every((t) => t.attempt === 1)).toBe(true);
  });

  it("samples with the gateway's run seed when the request gave none, and with the request's own seed otherwise", async () => {
    const engine = new FakeEngine();
    const sampled = { ...PARAMS, maxTokens: 2, temperature: 0.8 };
    const unseeded = await queued(e, 'job_run_seed', 'unseeded', { params: sampled, runSeed: 123_456 });
    const seeded = await queued(e, 'job_own_seed', 'seeded', { params: { ...sampled, seed: 7 }, runSeed: 99 });
    expect(await processInferenceJob(e.deps(engine), unseeded, attempt())).toBe('succeeded');
    expect(await processInferenceJob(e.deps(engine), seeded, attempt())).toBe('succeeded');
    expect(engine.requests.map((r) => [r.question, r.params.seed])).toEqual([
      ['unseeded', 123_456],
      ['seeded', 7],
    ]);
  });

  it('stores the result without waiting for the answer cache', async () => {
    // A cache Redis that never answers: nothing listens on its port, and its commands queue forever.
    const dead = new Redis(`redis://127.0.0.1:${await freeTcpPort()}`, { maxRetriesPerRequest: null, retryStrategy: () => 200, lazyConnect: false });
    dead.on('error', () => undefined);
    try {
      const answers = new AnswerCache(dead, e.keys, { l1MaxBytes: 0, l2TtlSeconds: 60, timeoutMs: 600_000 });
      const data = await queued(e, 'job_cache_down', 'q', { cacheKey: 'ab'.repeat(32), params: { ...PARAMS, maxTokens: 3 } });
      expect(await processInferenceJob(e.deps(new FakeEngine(), answers), data, attempt())).toBe('succeeded');
      expect((await e.store.get(data.id))?.result?.text).toBe('t0 t1 t2 ');
    } finally {
      dead.disconnect();
    }
  });
});

describe('usage metering by processInferenceJob', () => {
  const prefix = testPrefix();
  let redis: Redis;
  let e: Env;
  const since = Date.now();

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    e = env(redis, prefix);
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  /** A tenant's usage since the file started, by class (the hours a test can span). */
  async function usageOf(tenant: string): Promise<Record<string, Record<string, number>>> {
    const cells = await e.usage.read({ tenant, fromHour: hourOf(since), toHour: hourOf(Date.now()) + 3_600 });
    const out: Record<string, Record<string, number>> = {};
    for (const c of cells) {
      const t = (out[c.workClass] ??= {});
      for (const k of Object.keys(c.totals) as (keyof UsageTotals)[]) t[k] = (t[k] ?? 0) + c.totals[k];
    }
    return out;
  }
  const only = (t: Partial<Record<string, number>>) => ({
    jobs: 0, failedJobs: 0, cancelledJobs: 0, deviceUs: 0, promptTokens: 0, completionTokens: 0, images: 0, ...t,
  });

  it('meters a succeeded job once, at its class, with the device time its result reports; a later run of it adds nothing', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_meter_ok', 'q', { tenant: 'm-ok', workClass: 'async', params: { ...PARAMS, maxTokens: 3 } });
    const plain = await queued(e, 'job_meter_plain', 'q', { tenant: 'm-ok', params: { ...PARAMS, maxTokens: 2 } });
    expect(await processInferenceJob(e.deps(engine), data, attempt())).toBe('succeeded');
    expect(await processInferenceJob(e.deps(engine), plain, attempt())).toBe('succeeded');
    const result = (await e.store.get(data.id))?.result;
    expect(result?.timings.deviceMs).toBe(PREFILL_MS + 3 * STEP_MS);
    // A re-delivery of the finished job (a second claim) finds it ended.
    expect(await processInferenceJob(e.deps(engine), data, attempt(3, 2))).toBe('already-finished');
    expect(await usageOf('m-ok')).toEqual({
      async: only({ jobs: 1, deviceUs: (PREFILL_MS + 3 * STEP_MS) * 1000, promptTokens: 5, completionTokens: 3, images: 1 }),
      // No class on the job: interactive.
      interactive: only({ jobs: 1, deviceUs: (PREFILL_MS + 2 * STEP_MS) * 1000, promptTokens: 5, completionTokens: 2, images: 1 }),
    });
  });

  it('meters a job that fails for good with the device time it was charged and no tokens; a run that is retried is not metered', async () => {
    const engine = new FakeEngine();
    engine.beforeToken = (question, index) => {
      if (question === 'times out' && index === 2) throw new AppError('timeout', 'past its deadline');
      if (question === 'breaks' && index === 1) throw new Error('engine broke');
    };
    const fatal = await queued(e, 'job_meter_timeout', 'times out', { tenant: 'm-fail' });
    await expect(processInferenceJob(e.deps(engine), fatal, attempt(3))).rejects.toMatchObject({ kind: 'fatal', error: { code: 'timeout' } });
    expect(await usageOf('m-fail')).toEqual({ interactive: only({ jobs: 1, failedJobs: 1, deviceUs: (PREFILL_MS + 3 * STEP_MS) * 1000, images: 1 }) });

    const flaky = await queued(e, 'job_meter_retried', 'breaks', { tenant: 'm-retry' });
    await expect(processInferenceJob(e.deps(engine), flaky, attempt(2, 1))).rejects.toMatchObject({ kind: 'transient' });
    expect((await e.store.get(flaky.id))?.status).toBe('queued');
    expect(await usageOf('m-retry')).toEqual({});
    await expect(processInferenceJob(e.deps(engine), flaky, attempt(2, 2))).rejects.toMatchObject({ kind: 'transient' });
    expect((await e.store.get(flaky.id))?.status).toBe('failed');
    // Only the last run, whose failure ended the job.
    expect(await usageOf('m-retry')).toEqual({ interactive: only({ jobs: 1, failedJobs: 1, deviceUs: (PREFILL_MS + 2 * STEP_MS) * 1000, images: 1 }) });
  });

  it('meters a job cancelled while it ran with what it had used, once: by the run that held it, not by a run that had lost it', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_meter_cancel', 'q', { tenant: 'm-cancel', params: { ...PARAMS, maxTokens: 400 } });
    engine.beforeToken = async (_q, index) => {
      if (index === 3) await e.store.cancel(data.id, Date.now());
    };
    expect(await processInferenceJob(e.deps(engine), data, attempt())).toBe('cancelled');
    const generated = engine.results.at(-1);
    expect(generated?.finishReason).toBe('cancelled');
    expect(await usageOf('m-cancel')).toEqual({
      interactive: only({
        jobs: 1,
        cancelledJobs: 1,
        deviceUs: Math.round((generated?.timings.deviceMs ?? 0) * 1000),
        promptTokens: 5,
        completionTokens: generated?.usage.completionTokens ?? -1,
        images: 1,
      }),
    });

    const stale = new FakeEngine();
    const lost = await queued(e, 'job_meter_stale', 'q', { tenant: 'm-stale', params: { ...PARAMS, maxTokens: 400 } });
    stale.beforeToken = async (_q, index) => {
      // Run 2 takes the job over, then the job is cancelled: the job is run 2's to meter (it held it), never run 1's.
      if (index === 3) {
        await e.store.start(lost.id, Date.now(), 2);
        await e.store.cancel(lost.id, Date.now());
      }
    };
    expect(await processInferenceJob(e.deps(stale), lost, attempt(3, 1))).toBe('cancelled');
    expect(await usageOf('m-stale')).toEqual({});
  });

  it('a usage write that fails leaves the job succeeded and reports the usage it lost', async () => {
    const lostEntries: UsageEntry[] = [];
    const data = await queued(e, 'job_meter_lost', 'q', { tenant: 'm-lost', params: { ...PARAMS, maxTokens: 2 } });
    const deps: ProcessDeps = {
      ...e.deps(new FakeEngine()),
      usage: { record: () => Promise.reject(new Error('usage Redis away')) },
      onUsageLost: (entry) => lostEntries.push(entry),
    };
    expect(await processInferenceJob(deps, data, attempt())).toBe('succeeded');
    expect((await e.store.get(data.id))?.status).toBe('succeeded');
    expect(lostEntries).toMatchObject([{ tenant: 'm-lost', outcome: 'succeeded', deviceMs: PREFILL_MS + 2 * STEP_MS, completionTokens: 2, images: 1 }]);
  });
});

describe('processInferenceJob when the queue Redis is at maxmemory', () => {
  const prefix = testPrefix();
  let server: OwnRedis;
  let redis: Redis;
  let admin: Redis;
  let e: Env;

  beforeAll(async () => {
    server = await OwnRedis.start();
    redis = new Redis(server.url);
    admin = new Redis(server.url);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    e = env(redis, prefix);
  });
  afterAll(async () => {
    redis.disconnect();
    admin.disconnect();
    await server.dispose();
  });

  it('ends the run on the first refused token write (no unhandled rejection) and still fails the job', async () => {
    const engine = new FakeEngine();
    const data = await queued(e, 'job_oom', 'q');
    engine.beforeToken = async (_q, index) => {
      if (index === 0) await admin.config('SET', 'maxmemory', '1');
    };
    try {
      const run = processInferenceJob(e.deps(engine), data, attempt(1));
      await expect(run).rejects.toMatchObject({ kind: 'transient', error: { code: 'service_unavailable' } });
      expect(engine.emitted.get('q') ?? 0).toBeLessThan(PARAMS.maxTokens);
      // The failure transition is allowed at maxmemory, so that the job ends even then.
      const rec = await e.store.get(data.id);
      expect(rec?.status).toBe('failed');
      expect(rec?.error?.message).toContain('OOM command not allowed');
    } finally {
      await admin.config('SET', 'maxmemory', '0');
    }
  });
});
