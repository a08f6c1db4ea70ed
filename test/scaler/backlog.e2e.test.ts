import { Worker, type Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ForecastStore, SampleRecorder, evaluate, parseScalerMetadata } from '@fastvlm/autoscaling';
import { RedisKeys, poolQueue } from '@fastvlm/contracts';
import type { ScalerApp } from '../../apps/scaler/src/scaler-app';
import { scrape, value } from '../observability/prom';
import { REDIS_URL, cleanupPrefix, uniquePrefix, until } from '../support/stack';
import { KedaClient, ref, startTestScaler, testQueue } from './harness';

/** The pool of the tests' model: the scaler's default queue (its FASTVLM_MODEL is tiny-random). */
const POOL = poolQueue('tiny-random');

/** Long enough that no tick records anything during a test: every reading is one a call asked for. */
const NO_TICK = { SCALER_TICK_MS: '60000' };

describe('the scaler on a real BullMQ backlog', () => {
  const prefix = uniquePrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let scaler: ScalerApp;
  let keda: KedaClient;
  const cleanups: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = new Redis(REDIS_URL);
    scaler = await startTestScaler(prefix, NO_TICK);
    keda = new KedaClient(scaler.grpcAddress);
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    keda.close();
    await scaler.close();
    await cleanupPrefix(prefix);
    redis.disconnect();
  });

  const queueNamed = (name: string): Queue => {
    const q = testQueue(prefix, name);
    cleanups.push(() => q.close());
    return q;
  };

  /** A real worker that takes `n` jobs and holds them until the test ends. */
  async function holdJobs(queue: Queue, n: number): Promise<void> {
    let release = (): void => undefined;
    const held = new Promise<void>((r) => (release = r));
    const worker = new Worker(queue.name, () => held, { connection: new Redis(REDIS_URL, { maxRetriesPerRequest: null }), prefix: keys.bull(), concurrency: n });
    cleanups.push(async () => {
      release();
      await worker.close();
    });
    await until(`the worker to hold ${n} jobs`, async () => (await queue.getActiveCount()) === n);
  }

  it('records exactly what waits (waiting + prioritized + due delayed) and what runs, and answers what the strategy computes from the recorded history', async () => {
    const [N, M, K, J] = [7, 4, 3, 2];
    const q = queueNamed('backlog');
    await q.addBulk(Array.from({ length: J }, (_, i) => ({ name: 'chat', data: { held: i } })));
    await holdJobs(q, J);
    // With every slot busy the worker takes nothing more: the rest stays where BullMQ puts it.
    await q.addBulk([
      ...Array.from({ length: N }, (_, i) => ({ name: 'chat', data: { i } })),
      ...Array.from({ length: M }, (_, i) => ({ name: 'chat', data: { i }, opts: { priority: 1 + (i % 3) } })),
      ...Array.from({ length: K }, (_, i) => ({ name: 'chat', data: { i }, opts: { delay: 1 } })),
      { name: 'chat', data: {}, opts: { delay: 3_600_000 } },
    ]);
    // A few signals the gateways and workers publish: arrivals, and a start-up time.
    await redis.set(keys.autoscale('backlog', 'arrivals'), N + M + K + J + 1);
    await redis.lpush(keys.autoscale('backlog', 'startup'), 40);

    const metadata = { queue: 'backlog', strategy: 'adaptive', replicaCapacity: '0.5', targetQueueWaitSeconds: '10', startupSeconds: 'measured' };
    const so = ref('backlog-workers', metadata);
    const metricName = (await keda.getMetricSpec(so)).metricSpecs[0]?.metricName ?? '';
    const signal = async (s: string) => value(await scrape(scaler.httpUrl), 'fastvlm_scaler_signal', { queue: 'backlog', signal: s });
    let desired = -1;
    await until('the recorded signals to show the backlog', async () => {
      desired = (await keda.getMetrics(so, metricName)).metricValues[0]?.metricValue ?? -1;
      return (await signal('queued')) === N + M + K && (await signal('active')) === J;
    });
    expect(await signal('startup_seconds')).toBe(40);
    expect(await keda.isActive(so)).toBe(true);

    // Read back what the scaler recorded and decide with the strategy functions themselves.
    const recorder = new SampleRecorder(redis, keys);
    const history = await recorder.history('backlog', 0, Math.floor(Date.now() / 1000) + 1);
    expect(history.at(-1)).toMatchObject({ queued: N + M + K, active: J, arrivals: N + M + K + J + 1 });
    const recomputed = evaluate(parseScalerMetadata(metadata, POOL), {
      history,
      startupSeconds: (await redis.lrange(keys.autoscale('backlog', 'startup'), 0, -1)).map(Number),
      forecast: await new ForecastStore(redis, keys, recorder).read('backlog'),
    });
    const again = (await keda.getMetrics(so, metricName)).metricValues[0]?.metricValue;
    expect(desired).toBeGreaterThan(1);
    expect(again).toBe(desired);
    expect(recomputed.decision.desired).toBe(desired);
    expect(recomputed.params.startupSeconds).toBe(40);
  });

  it('is active with only prioritized jobs, and with only running ones; not on an idle queue', async () => {
    const prio = queueNamed('prio-only');
    await prio.addBulk([1, 2].map((i) => ({ name: 'chat', data: { i }, opts: { priority: 5 } })));
    expect(await keda.isActive(ref('prio', { queue: 'prio-only' }))).toBe(true);

    const running = queueNamed('active-only');
    await running.addBulk([1, 2].map((i) => ({ name: 'chat', data: { i } })));
    await holdJobs(running, 2);
    expect(await running.getWaitingCount()).toBe(0);
    expect(await keda.isActive(ref('running', { queue: 'active-only' }))).toBe(true);

    expect(await keda.isActive(ref('idle', { queue: 'idle-queue' }))).toBe(false);
  });

  it('answers the same GetMetrics and IsActive from two scaler replicas on one Redis, each ticking and recording', async () => {
    // A prefix of its own: the history holds only what these two replicas record, on an unchanging backlog.
    const shared = uniquePrefix();
    const sharedKeys = new RedisKeys(shared);
    const q = testQueue(shared, POOL);
    cleanups.push(async () => {
      await q.close();
      await cleanupPrefix(shared);
    });
    await q.addBulk(Array.from({ length: 9 }, (_, i) => ({ name: 'chat', data: { i }, opts: { priority: i % 2 === 0 ? 0 : 3 } })));
    // Two replicas with the usual one-second tick, both recording into the same streams.
    const replicas = await Promise.all([startTestScaler(shared), startTestScaler(shared)]);
    const clients = replicas.map((r) => new KedaClient(r.grpcAddress));
    cleanups.push(async () => {
      for (const c of clients) c.close();
      for (const r of replicas) await r.close();
    });
    const so = ref('shared', { strategy: 'aggressive', replicaCapacity: '0.25' });
    const recorded = async (): Promise<number[]> => (await new SampleRecorder(redis, sharedKeys).history(POOL, 0, Math.floor(Date.now() / 1000) + 5)).map((s) => s.t);
    const askBoth = () =>
      Promise.all(
        clients.map(async (c) => ({
          desired: (await c.getMetrics(so, 's0-fastvlm-inference-tiny-random-desired-replicas')).metricValues[0]?.metricValue,
          active: await c.isActive(so),
        })),
      );
    await until('both replicas to have ticked a few seconds', async () => (await recorded()).length >= 3);
    const [a, b] = await askBoth();
    expect(a?.desired).toBeGreaterThan(1);
    expect(a?.active).toBe(true);
    expect(b).toEqual(a);
    // Each second is recorded once, whichever replica got there first.
    const seconds = await recorded();
    expect(new Set(seconds).size).toBe(seconds.length);
    // And again a few ticks later: the answer is Redis's, not one replica's memory.
    const count = seconds.length;
    await until('more ticks', async () => (await recorded()).length >= count + 2);
    const [c, d] = await askBoth();
    expect(d).toEqual(c);
  });
});
