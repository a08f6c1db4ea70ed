import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ArrivalCounter } from '@fastvlm/autoscaling';
import { RedisKeys, poolQueue, type AutoscalePart } from '@fastvlm/contracts';
import type { Pools } from '../../apps/gateway/src/infra/pools';
import { POOLS } from '../../apps/gateway/src/infra/tokens';
import { auth, chatBody, png, postJson } from '../support/requests';
import { REDIS_URL, cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

interface Completion {
  choices: { message: { content: string } }[];
}

describe('autoscaling signals published by a real gateway and a real worker', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  // The signals of the tiny-random pool, which the worker consumes and the gateway routes to.
  const key = (part: AutoscalePart): string => keys.autoscale(poolQueue('tiny-random'), part);
  let gw: GatewayHandle;
  let worker: WorkerProcess;
  let image: Buffer;
  let redis: Redis;
  /** The gateway's own counter: flushing it by hand makes "nothing more was counted" exact instead of a wait. */
  let counter: ArrivalCounter;

  beforeAll(async () => {
    [gw, worker, image] = await Promise.all([startGateway(prefix), startWorker(prefix), png(64, 48, 23)]);
    redis = new Redis(REDIS_URL);
    counter = gw.app.get<Pools>(POOLS).of('tiny-random').arrivals;
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    redis?.disconnect();
    await cleanupPrefix(prefix);
  });

  /** Every arrival this gateway counted, written: the counter's value is then exact. */
  const arrivals = async (): Promise<number> => {
    await counter.flush();
    expect(counter.unflushed).toBe(0);
    return Number(await redis.get(key('arrivals')));
  };
  const counterReaches = (part: AutoscalePart, n: number): Promise<true> =>
    until(`${part} to reach ${n}`, async () => Number(await redis.get(key(part))) === n || undefined);

  it('counts every job added to the queue once, every job the worker finished, its busy time, and its start-up', async () => {
    const n = 6;
    const ids = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const res = await postJson(`${gw.url}/v1/jobs`, chatBody(image, `signals question ${i}`, { max_tokens: 4 }));
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      }),
    );
    expect(new Set(ids).size).toBe(n);
    // Flushed by the gateway's own once-a-second timer.
    await counterReaches('arrivals', n);
    expect(await arrivals()).toBe(n);

    await counterReaches('completions', n);
    const work = await until('the work totals of every job', async () => {
      const h = await redis.hgetall(key('work'));
      return Number(h.busyDone) === n ? h : undefined;
    });
    expect(Number(work.busyMs)).toBeGreaterThan(0);
    // Saturation needs every slot (FASTVLM_MAX_BATCH, 8) taken: six jobs never saturate this worker.
    expect(Number(work.satDone ?? 0)).toBe(0);

    const startup = await until('the start-up time', async () => {
      const list = await redis.lrange(key('startup'), 0, -1);
      return list.length > 0 ? list : undefined;
    });
    expect(startup).toHaveLength(1);
    expect(Number(startup[0])).toBeGreaterThan(0);

    // The worker loaded under the id it then announced, and left `loading` when it was ready.
    const registered = await redis.zrange(keys.workers(), '0', '-1');
    expect(registered).toHaveLength(1);
    const ready = worker
      .output()
      .split('\n')
      .filter((l) => l.includes('"worker ready"'))
      .map((l) => (JSON.parse(l) as { workerId: string }).workerId);
    expect(ready).toEqual(registered);
    await until('the ready worker to leave `loading`', async () => (await redis.zscore(key('loading'), registered[0] ?? '')) === null);
    expect(await redis.zcard(key('loading'))).toBe(0);
  });

  it('counts no arrival for an answer from the cache, nor for identical requests joined to the job in flight', async () => {
    const before = await arrivals();
    const completedBefore = Number(await redis.get(key('completions')));

    // An async job's deterministic answer is cached by the worker: the same request again is answered from it.
    const body = chatBody(image, 'signals question 0', { max_tokens: 4 });
    const cached = await postJson(`${gw.url}/v1/chat/completions`, body);
    expect(cached.status).toBe(200);
    expect(cached.headers.get('x-cache')).toMatch(/^hit-/);
    expect(await arrivals()).toBe(before);

    // Identical sync requests in flight together share one job: one arrival.
    const same = chatBody(image, 'signals: five at once', { max_tokens: 40 });
    const answers = await Promise.all(Array.from({ length: 5 }, () => postJson(`${gw.url}/v1/chat/completions`, same, auth('acme'))));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    const texts = new Set(await Promise.all(answers.map(async (r) => ((await r.json()) as Completion).choices[0]?.message.content)));
    expect(texts.size).toBe(1);
    expect(await arrivals()).toBe(before + 1);

    // And once answered, the same request comes from the cache.
    const again = await postJson(`${gw.url}/v1/chat/completions`, same);
    expect(again.headers.get('x-cache')).toMatch(/^hit-/);
    expect(await arrivals()).toBe(before + 1);
    await counterReaches('completions', completedBefore + 1);
  });
});
