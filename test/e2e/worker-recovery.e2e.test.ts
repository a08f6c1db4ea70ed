import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { auth, chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle } from '../support/stack';

interface JobView {
  id: string;
  status: string;
  result: { choices: { message: { content: string } }[]; usage: { completion_tokens: number } } | null;
}

/** Short locks so that a killed worker's jobs are picked up within seconds. */
const FAST_RECOVERY = { WORKER_LOCK_DURATION_MS: '2000', WORKER_STALLED_INTERVAL_MS: '1000' };

describe('worker lifecycle', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let gw: GatewayHandle;
  let redis: Redis;

  const submit = async (question: string, maxTokens: number, tenant: 'acme' | 'globex' = 'acme'): Promise<string> => {
    const res = await postJson(`${gw.url}/v1/jobs`, chatBody(await png(32, 32, 4), question, { max_tokens: maxTokens }), auth(tenant));
    expect(res.status).toBe(202);
    return ((await res.json()) as JobView).id;
  };
  const view = async (id: string, tenant: 'acme' | 'globex' = 'acme'): Promise<JobView> =>
    (await (await fetch(`${gw.url}/v1/jobs/${id}`, { headers: auth(tenant) })).json()) as JobView;
  const doneEvents = async (id: string): Promise<number> =>
    (await redis.xrange(keys.events(id), '-', '+')).filter(([, f]) => (JSON.parse(f[1] ?? '{}') as { type: string }).type === 'done').length;

  beforeAll(async () => {
    gw = await startGateway(prefix);
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await gw?.close();
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  it('on SIGTERM stops taking jobs, finishes the active one and exits 0', async () => {
    // One job at a time, so that the second job is still waiting when the drain starts.
    const worker = await startWorker(prefix, { WORKER_CONCURRENCY: '1' });
    const active = await submit('long answer during drain', 400);
    await until('the job to run', async () => (await view(active)).status === 'running');
    worker.child.kill('SIGTERM');
    const waiting = await submit('submitted while draining', 3);
    expect(await worker.exited).toBe(0);
    const finished = await view(active);
    expect(finished.status).toBe('succeeded');
    expect(finished.result?.usage.completion_tokens).toBe(400);
    // The drained worker took nothing new; the job waits for the next worker.
    expect((await view(waiting)).status).toBe('queued');
    const next = await startWorker(prefix);
    try {
      await until('the waiting job to finish', async () => (await view(waiting)).status === 'succeeded');
    } finally {
      await stopWorker(next);
    }
  });

  it('after kill -9 of a worker with active jobs, a new worker completes all of them, each result stored once', async () => {
    const victim = await startWorker(prefix, { ...FAST_RECOVERY, WORKER_CONCURRENCY: '3', FASTVLM_MAX_BATCH: '3' });
    const ids = await Promise.all([0, 1, 2].map((i) => submit(`crash test ${i}`, 200)));
    await until('all three jobs to run', async () => (await Promise.all(ids.map((id) => view(id)))).every((j) => j.status === 'running'));
    await stopWorker(victim, 'SIGKILL');
    expect(victim.child.signalCode).toBe('SIGKILL');
    const rescuer = await startWorker(prefix, FAST_RECOVERY);
    try {
      await until('the rescued jobs to finish', async () => (await Promise.all(ids.map((id) => view(id)))).every((j) => j.status === 'succeeded'), 60_000);
      // The same requests from another tenant miss the cache and run undisturbed: the rescued answers must equal them.
      const references = await Promise.all([0, 1, 2].map((i) => submit(`crash test ${i}`, 200, 'globex')));
      await until('the reference jobs', async () => (await Promise.all(references.map((id) => view(id, 'globex')))).every((j) => j.status === 'succeeded'), 60_000);
      for (const [i, id] of ids.entries()) {
        const j = await view(id);
        const reference = await view(references[i] ?? '', 'globex');
        expect(j.result?.usage.completion_tokens).toBe(200);
        expect(j.result?.choices[0]?.message.content).toBe(reference.result?.choices[0]?.message.content);
        expect(await doneEvents(id)).toBe(1);
        const stored = JSON.parse((await redis.hget(keys.job(id), 'result')) ?? '{}') as { text?: string };
        expect(stored.text).toBe(j.result?.choices[0]?.message.content);
      }
    } finally {
      await stopWorker(rescuer);
    }
  }, 240_000);
});
