import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GatewayProcess } from '../support/processes';
import { until, type WorkerProcess } from '../support/stack';
import { ChaosStack, FAST_LOCKS, jobView, longBody, reportFigures, submitJob } from './harness';

const JOBS = 3;
const TERMINAL = ['succeeded', 'failed', 'cancelled'];

describe('chaos: the queue Redis reaches maxmemory (noeviction) while jobs stream', () => {
  let stack: ChaosStack;
  let gw: GatewayProcess;
  let worker: WorkerProcess;

  const refusedWrites = async (): Promise<number> => {
    const info = await stack.redis.info('errorstats');
    return Number(/errorstat_OOM:count=(\d+)/.exec(info)?.[1] ?? 0);
  };

  beforeAll(async () => {
    stack = await ChaosStack.start();
    // A short deadline bounds how long a job whose failure write was refused can stay unfinished.
    gw = await stack.gateway({ JOB_DEADLINE_S: '60' });
    worker = await stack.worker({ ...FAST_LOCKS, WORKER_CONCURRENCY: String(JOBS), FASTVLM_MAX_BATCH: String(JOBS) });
  });
  afterAll(async () => {
    await stack?.config('maxmemory', '0').catch(() => undefined);
    await stack?.dispose();
  });

  it('keeps the worker alive: every job ends, and once memory is freed the worker serves again', async () => {
    let exitCode: number | null | 'alive' = 'alive';
    void worker.exited.then((c) => (exitCode = c));
    const ids = await Promise.all(Array.from({ length: JOBS }, async (_, i) => submitJob(gw.url, await longBody(`oom ${i}`, 1000))));
    await until('every job to stream', async () => (await Promise.all(ids.map(async (id) => (await stack.stream(id)).filter((e) => e.event.type === 'token').length))).every((n) => n >= 5), 90_000).catch(async (e: unknown) => {
      console.log(JSON.stringify(await Promise.all(ids.map((id) => stack.record(id)))), worker.output().slice(-3000), gw.output().slice(-3000));
      throw e;
    });

    const before = await refusedWrites();
    // Below what Redis already uses: every write command is refused, reads still answer.
    await stack.config('maxmemory', '1');
    await until('token writes to be refused', async () => (await refusedWrites()) - before >= 5 || exitCode !== 'alive', 30_000);
    // Let the refusals reach the worker's handlers before memory comes back.
    const refusedAt = Date.now();
    await until('a few more refusals', async () => (await refusedWrites()) - before >= 20 || exitCode !== 'alive' || Date.now() - refusedAt > 3_000, 30_000);
    const refused = (await refusedWrites()) - before;
    await stack.config('maxmemory', '0');
    const freedAt = Date.now();

    let endedMs = -1;
    try {
      await until('every job to end, or the worker to die', async () => exitCode !== 'alive' || (await Promise.all(ids.map((id) => stack.record(id)))).every((r) => TERMINAL.includes(r.status ?? '')), 120_000);
      endedMs = Date.now() - freedAt;
    } finally {
      const records = await Promise.all(ids.map((id) => stack.record(id)));
      reportFigures('queue-oom', {
        jobs: JOBS,
        refusedWrites: refused,
        workerExit: exitCode,
        statuses: records.map((r) => r.status),
        errors: records.map((r) => (r.error ? (JSON.parse(r.error) as { code: string }).code : null)),
        allEndedAfterFreeMs: endedMs,
        bullmq: await Promise.all(ids.map((id) => stack.bullState(id))),
        workerErrors: lastErrors(worker.output()),
      });
    }
    expect(exitCode).toBe('alive');
    for (const id of ids) expect(TERMINAL).toContain((await jobView(gw.url, id)).status);

    const after = await submitJob(gw.url, await longBody('after the OOM', 4));
    await until('a job after the OOM to succeed', async () => (await jobView(gw.url, after)).status === 'succeeded', 60_000);
    expect(exitCode).toBe('alive');
  });
});

/** The last few error-level log lines of a process, message only. */
function lastErrors(output: string): string[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{') && /"level":(50|60)/.test(l))
    .slice(-3)
    .map((l) => {
      const j = JSON.parse(l) as { msg?: string; err?: { message?: string } };
      return `${j.msg ?? ''}: ${(j.err?.message ?? '').slice(0, 120)}`;
    });
}
