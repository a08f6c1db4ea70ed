import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../apps/worker/src/config';
import { until } from '../support/stack';
import { ChaosStack, longBody, reportFigures, submitJob } from './harness';
import type { GatewayProcess } from '../support/processes';

const TIMEOUT_MS = 3000;

describe('chaos: SIGTERM that cannot drain within SHUTDOWN_TIMEOUT_MS', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('a worker mid-batch exits 0 soon after the timeout, and another worker (shipped lock settings) completes every job once', async () => {
    const BATCH = 2;
    const TOKENS = 2048;
    const victim = await stack.worker({ SHUTDOWN_TIMEOUT_MS: String(TIMEOUT_MS), WORKER_CONCURRENCY: String(BATCH), FASTVLM_MAX_BATCH: String(BATCH) });
    const ids = await Promise.all(Array.from({ length: BATCH }, async (_, i) => submitJob(gw.url, await longBody(`sigterm timeout ${i}`, TOKENS))));
    await until('the batch to decode', async () => (await Promise.all(ids.map((id) => stack.stream(id)))).every((s) => s.some((e) => e.event.type === 'token')), 60_000);
    const rescuer = await stack.worker({ WORKER_CONCURRENCY: String(BATCH), FASTVLM_MAX_BATCH: String(BATCH) });
    const signalled = Date.now();
    victim.child.kill('SIGTERM');
    const code = await victim.exited;
    const exitMs = Date.now() - signalled;
    const statusAtExit = await Promise.all(ids.map(async (id) => (await stack.record(id)).status));
    await until('the rescuer to claim every job', async () => (await Promise.all(ids.map((id) => stack.runsStarted(id)))).every((n) => n === 2), 120_000);
    const reclaimMs = Date.now() - signalled;
    await until('every job to succeed', async () => (await Promise.all(ids.map((id) => stack.record(id)))).every((r) => r.status === 'succeeded'), 240_000);
    const dones = await Promise.all(ids.map(async (id) => (await stack.stream(id)).filter((e) => e.event.type === 'done').length));
    reportFigures('sigterm-timeout', { shutdownTimeoutMs: TIMEOUT_MS, sigtermToExitMs: exitMs, exitCode: code, statusAtExit, sigtermToReclaimMs: reclaimMs });
    expect(code).toBe(0);
    expect(statusAtExit).toEqual(ids.map(() => 'running'));
    expect(dones).toEqual(ids.map(() => 1));
    expect(rescuer.child.exitCode).toBeNull();
  }, 480_000);

  it('a worker with no job whose queue Redis is down exits 0 within seconds, not at the 60 s default timeout', async () => {
    // The shipped SHUTDOWN_TIMEOUT_MS (60 s): with no job to wait for, only Redis round trips are left, each bounded.
    const worker = await stack.worker();
    await stack.server.down();
    try {
      await until('the worker to notice', () => worker.output().includes('redis connection error'), 30_000);
      const signalled = Date.now();
      worker.child.kill('SIGTERM');
      const code = await worker.exited;
      const exitMs = Date.now() - signalled;
      reportFigures('sigterm-redis-down', { shutdownTimeoutMs: loadWorkerConfig({}).SHUTDOWN_TIMEOUT_MS, sigtermToExitMs: exitMs, exitCode: code });
      expect(code).toBe(0);
      // Generous: well under the 60 s timeout it used to wait out (and past which the old code still hung).
      expect(exitMs).toBeLessThan(30_000);
    } finally {
      await stack.server.up();
    }
  }, 120_000);
});
