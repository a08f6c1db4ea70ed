import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess, type GatewayProcess } from '../support/processes';
import { postJson } from '../support/requests';
import { until } from '../support/stack';
import { ChaosStack, FAST_LOCKS, jobView, longBody, reportFigures, submitJob } from './harness';

describe('chaos: a job that kills its worker twice (BullMQ maxStalledCount 1)', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;

  beforeAll(async () => {
    stack = await ChaosStack.start();
    // One unfinished job at a time: a job that never ends would lock the tenant out.
    await stack.setTenant('acme', { maxInFlightJobs: 1 });
    gw = await stack.gateway();
  });
  afterAll(async () => {
    await stack?.dispose();
  });

  it('ends failed with worker_lost, its stream ends and expires, and the tenant can submit again', async () => {
    const id = await submitJob(gw.url, await longBody('poison', 4096));
    const t0 = Date.now();
    for (const run of [1, 2]) {
      const victim = await stack.worker(FAST_LOCKS);
      await until(`run ${run} to stream tokens`, async () => {
        const entries = await stack.stream(id);
        const lastStart = entries.map((e) => e.event.type === 'status' && e.event.status === 'running').lastIndexOf(true);
        return (await stack.runsStarted(id)) >= run && entries.slice(lastStart).some((e) => e.event.type === 'token');
      }, 90_000);
      await stopProcess(victim, 'SIGKILL');
    }
    const killedAt = Date.now();
    // The third worker's stalled check finds the job over its limit: BullMQ fails it without running it.
    await stack.worker(FAST_LOCKS);
    let failedAfterMs = -1;
    let nextId: string | null = null;
    try {
      await until('the job record to end', async () => ['failed', 'succeeded', 'cancelled'].includes((await stack.record(id)).status ?? ''), 60_000);
      failedAfterMs = Date.now() - killedAt;
    } finally {
      const rec = await stack.record(id);
      // The tenant's next job: admitted only if the poison job gave its in-flight slot back.
      const retry = await postJson(`${gw.url}/v1/jobs`, await longBody('after the poison', 4));
      if (retry.status === 202) nextId = ((await retry.json()) as { id: string }).id;
      else await retry.body?.cancel();
      reportFigures('double-crash', {
        status: rec.status,
        error: rec.error ? (JSON.parse(rec.error) as { code: string }).code : null,
        endedAfterSecondKillMs: failedAfterMs,
        totalMs: Date.now() - t0,
        nextSubmitStatus: retry.status,
        bullmq: await stack.bullState(id),
      });
    }
    const view = await jobView(gw.url, id);
    expect(view.status).toBe('failed');
    expect(view.error?.code).toBe('worker_lost');
    const entries = await stack.stream(id);
    expect(entries.at(-1)?.event.type).toBe('error');
    expect(await stack.redis.ttl(stack.keys.job(id))).toBeGreaterThan(0);
    expect(await stack.redis.ttl(stack.keys.events(id))).toBeGreaterThan(0);

    // The slot was free again: the next job was admitted, and it runs.
    expect(nextId).not.toBeNull();
    await until('the next job to succeed', async () => (await jobView(gw.url, nextId ?? '')).status === 'succeeded', 60_000);
  });
});
