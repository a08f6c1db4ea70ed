import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../apps/worker/src/config';
import { until } from '../support/stack';
import { ChaosStack, jobView, longBody, reportFigures, submitJob } from './harness';
import type { GatewayProcess } from '../support/processes';

const TOKENS = 4096;

/**
 * The recovery time after `kill -9` with the shipped lock settings (no
 * overrides): the lost worker's lock must expire, then a stalled check of
 * the surviving worker moves the job back to wait, and it takes it.
 */
describe('chaos: kill -9 of the worker running a job, another worker running', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('the surviving worker re-runs the job and stores its one full answer', async () => {
    const defaults = loadWorkerConfig({});
    const victim = await stack.worker({ WORKER_CONCURRENCY: '1' });
    const id = await submitJob(gw.url, await longBody('kill -9 recovery', TOKENS));
    await until('the victim to run the job', async () => (await stack.runsStarted(id)) === 1, 60_000);
    // Started after the job was taken, so the job is on the victim; it is running when the victim dies.
    const rescuer = await stack.worker({ WORKER_CONCURRENCY: '1' });
    await until('the job to stream tokens', async () => (await stack.stream(id)).some((e) => e.event.type === 'token'), 60_000);
    expect((await jobView(gw.url, id)).status).toBe('running');
    const killed = Date.now();
    victim.child.kill('SIGKILL');
    await victim.exited;
    await until('the rescuer to claim the job', async () => (await stack.runsStarted(id)) === 2, 180_000);
    const reclaimMs = Date.now() - killed;
    // Polled in Redis: the gateway's per-key rate limit is not under test.
    await until('the rescued job to succeed', async () => (await stack.record(id)).status === 'succeeded', 240_000);
    const succeedMs = Date.now() - killed;
    const view = await jobView(gw.url, id);
    const dones = (await stack.stream(id)).filter((e) => e.event.type === 'done').length;
    reportFigures('kill9-recovery', {
      lockDurationMs: defaults.WORKER_LOCK_DURATION_MS,
      stalledIntervalMs: defaults.WORKER_STALLED_INTERVAL_MS,
      killToReclaimMs: reclaimMs,
      killToSucceededMs: succeedMs,
      tokens: TOKENS,
    });
    expect(view.result?.usage.completion_tokens).toBe(TOKENS);
    expect(dones).toBe(1);
    expect(rescuer.child.exitCode).toBeNull();
  }, 480_000);
});
