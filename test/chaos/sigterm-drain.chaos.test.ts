import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from '../support/stack';
import { ChaosStack, jobView, longBody, reportFigures, submitJob } from './harness';
import type { GatewayProcess } from '../support/processes';

const BATCH = 4;
const TOKENS = 300;

describe('chaos: SIGTERM while a worker decodes a batch', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('drains the batch: every job of it succeeds with its full answer and one result, and the worker exits 0', async () => {
    const worker = await stack.worker({ WORKER_CONCURRENCY: String(BATCH), FASTVLM_MAX_BATCH: String(BATCH) });
    const ids = await Promise.all(Array.from({ length: BATCH }, async (_, i) => submitJob(gw.url, await longBody(`drain ${i}`, TOKENS))));
    const tokenCounts = async (): Promise<number[]> => Promise.all(ids.map(async (id) => (await stack.stream(id)).filter((e) => e.event.type === 'token').length));
    // Mid-decode: every job of the batch has streamed some tokens, none has finished.
    await until('the whole batch to decode', async () => (await tokenCounts()).every((n) => n >= 5), 60_000);
    const tokensAtSignal = (await tokenCounts()).reduce((a, b) => a + b, 0);
    const signalled = Date.now();
    worker.child.kill('SIGTERM');
    const code = await worker.exited;
    const drainMs = Date.now() - signalled;

    const views = await Promise.all(ids.map((id) => jobView(gw.url, id)));
    const dones = await Promise.all(ids.map(async (id) => (await stack.stream(id)).filter((e) => e.event.type === 'done').length));
    reportFigures('sigterm-mid-batch', { jobs: BATCH, tokensPerJob: TOKENS, tokensWrittenAtSignal: tokensAtSignal, drainMs, exitCode: code, succeeded: views.filter((v) => v.status === 'succeeded').length });
    expect(code).toBe(0);
    expect(views.map((v) => v.status)).toEqual(ids.map(() => 'succeeded'));
    expect(views.map((v) => v.result?.usage.completion_tokens)).toEqual(ids.map(() => TOKENS));
    expect(dones).toEqual(ids.map(() => 1));
  }, 180_000);
});
