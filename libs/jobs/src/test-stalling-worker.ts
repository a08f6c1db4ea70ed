/**
 * A worker process for tests that kill workers: a real BullMQ Worker running
 * processInferenceJob, with an engine that streams a token every few
 * milliseconds until its run is aborted, so that the job is always mid-run
 * when the test kills the process. Short locks make a killed run stall fast.
 * Usage: tsx test-stalling-worker.ts <redis url> <key prefix>
 */
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { InferenceJobDataSchema, RedisKeys, poolQueue } from '@fastvlm/contracts';
import type { GenerateRequest, GenerateResult } from '@fastvlm/pipeline';
import { AnswerCache } from './answer-cache';
import { ImageStore } from './image-store';
import { JobStore } from './job-store';
import { processInferenceJob, type InferenceEngine } from './process-job';

const [url = 'redis://127.0.0.1:6379', prefix = 'missing-prefix'] = process.argv.slice(2);
const keys = new RedisKeys(prefix);
const redis = new Redis(url, { maxRetriesPerRequest: null });

const engine: InferenceEngine = {
  info: { id: 'fake-model', revision: 'rev-1', dtype: 'fp32', device: 'cpu', dir: '/nowhere' },
  async generate(req: GenerateRequest): Promise<GenerateResult> {
    let i = 0;
    while (!req.signal?.aborted) {
      await new Promise((r) => setTimeout(r, 20));
      req.onToken?.({ index: i, text: `t${i} ` });
      i += 1;
    }
    return {
      text: '',
      finishReason: 'cancelled',
      usage: { promptTokens: 1, completionTokens: i },
      tokenIds: [],
      timings: { queueMs: 0, preprocessMs: 0, visionMs: 0, prefillMs: 0, decodeMs: 0, ttftMs: 0, deviceMs: 0 },
    };
  },
};
const deps = {
  store: new JobStore(redis, keys, 60),
  images: new ImageStore(redis, keys, 60),
  answers: new AnswerCache(redis, keys, { l1MaxBytes: 0, l2TtlSeconds: 60 }),
  engine,
  now: () => Date.now(),
};

const worker = new Worker(
  poolQueue('fake-model'),
  async (job) => {
    process.stdout.write(`claimed ${job.id ?? ''} ${job.attemptsStarted}\n`);
    const data = InferenceJobDataSchema.parse(job.data);
    const signal = new AbortController().signal;
    return processInferenceJob(deps, data, { attemptsMade: job.attemptsMade, maxAttempts: job.opts.attempts ?? 1, signal, claim: job.attemptsStarted });
  },
  { connection: redis, prefix: keys.bull(), lockDuration: 1000, stalledInterval: 500, maxStalledCount: 1 },
);
worker.on('error', (e) => process.stderr.write(`worker error: ${e.message}\n`));
void worker.waitUntilReady().then(() => process.stdout.write('ready\n'));
