import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { auth, chatBody, png, postJson } from '../support/requests';
import { PrivateRedis } from '../support/redis-server';
import { REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface JobView {
  id: string;
  status: string;
  result: { usage: { completion_tokens: number } } | null;
}

/** Short locks so that an abandoned job is picked up by the next worker within seconds. */
const FAST_RECOVERY = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };

describe('worker shutdown', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let gw: GatewayHandle;
  let redis: Redis;

  const view = async (id: string): Promise<JobView> => (await (await fetch(`${gw.url}/v1/jobs/${id}`, { headers: auth() })).json()) as JobView;
  const events = async (id: string): Promise<{ type: string }[]> =>
    (await redis.xrange(keys.events(id), '-', '+')).map(([, f]) => JSON.parse(f[1] ?? '{}') as { type: string });

  beforeAll(async () => {
    gw = await startGateway(prefix);
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await gw?.close();
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  it('on SIGTERM gives up on a job still running at SHUTDOWN_TIMEOUT_MS, exits 0, and another worker completes the job', async () => {
    // Two sequences of 1,024 tokens decoded on one thread take far longer than the 2 s timeout (tens of seconds).
    const victim = await startWorker(prefix, { ...FAST_RECOVERY, SHUTDOWN_TIMEOUT_MS: '2000', WORKER_CONCURRENCY: '2', FASTVLM_MAX_BATCH: '2' });
    const image = await png(32, 32, 21);
    const ids = await Promise.all(
      Array.from({ length: 2 }, async (_, i) => {
        const res = await postJson(`${gw.url}/v1/jobs`, chatBody(image, `shutdown while decoding ${i}`, { max_tokens: 1024 }), auth());
        expect(res.status).toBe(202);
        return ((await res.json()) as JobView).id;
      }),
    );
    await until('every job to stream tokens', async () => (await Promise.all(ids.map(events))).every((e) => e.some((x) => x.type === 'token')));
    victim.child.kill('SIGTERM');
    expect(await victim.exited).toBe(0);
    // It did not wait for the answers: they are still running, and the log says what happens to them.
    for (const id of ids) expect((await view(id)).status).toBe('running');
    expect(victim.output()).toContain('"active jobs did not finish within SHUTDOWN_TIMEOUT_MS: abandoning them');
    expect(victim.output()).not.toContain('will be re-run elsewhere');

    const rescuer = await startWorker(prefix, { ...FAST_RECOVERY, WORKER_CONCURRENCY: '2', FASTVLM_MAX_BATCH: '2' });
    try {
      await until('the abandoned jobs to be completed by the next worker', async () => (await Promise.all(ids.map(view))).every((j) => j.status === 'succeeded'), 180_000);
      for (const id of ids) {
        expect((await view(id)).result?.usage.completion_tokens).toBe(1024);
        expect((await events(id)).filter((e) => e.type === 'done')).toHaveLength(1);
      }
    } finally {
      await stopWorker(rescuer);
    }
  }, 300_000);

  it('on SIGTERM while the queue Redis is unreachable, exits 0 within its timeout instead of hanging', async () => {
    const own = await PrivateRedis.start();
    let worker: WorkerProcess | null = null;
    try {
      worker = await startWorker(prefix, { SHUTDOWN_TIMEOUT_MS: '2000' }, own.url);
      const w = worker;
      await own.down();
      await until('the worker to notice Redis is gone', () => w.output().includes('redis connection error'));
      w.child.kill('SIGTERM');
      // Generous bound (ten times the 2 s timeout) so a slow machine never fails it; today the worker is
      // still running 90 s after SIGTERM, waiting on a connection that retries forever.
      await until('the worker to exit', () => w.child.exitCode !== null || w.child.signalCode !== null, 20_000);
      expect(w.child.exitCode).toBe(0);
    } finally {
      if (worker) await stopWorker(worker, 'SIGKILL');
      await own.dispose();
    }
  }, 120_000);
});
