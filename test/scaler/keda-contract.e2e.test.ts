import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STRATEGY_NAMES } from '@fastvlm/autoscaling';
import type { ScalerApp } from '../../apps/scaler/src/scaler-app';
import { scrape, value } from '../observability/prom';
import { freePort } from '../support/redis-server';
import { cleanupPrefix, uniquePrefix, until } from '../support/stack';
import { KedaClient, ref, startTestScaler, testQueue } from './harness';

/** The error a call failed with (or a failure of the test when it succeeded). */
async function failure(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (e) {
    return e as ServiceError;
  }
  throw new Error('the call succeeded');
}

describe('KEDA external scaler contract', () => {
  const prefix = uniquePrefix();
  let scaler: ScalerApp;
  let keda: KedaClient;

  beforeAll(async () => {
    // Two pools, as gateways configured with these models route to: the scaler watches each of their queues.
    scaler = await startTestScaler(prefix, { FASTVLM_MODELS: 'tiny-random,tiny-random@other' });
    keda = new KedaClient(scaler.grpcAddress);
  });
  afterAll(async () => {
    keda.close();
    await scaler.close();
    await cleanupPrefix(prefix);
  });

  it('GetMetricSpec returns one metric with target 1 in both the integer and the float field', async () => {
    const res = await keda.getMetricSpec(ref('chat-workers', { queue: 'specq' }));
    expect(res.metricSpecs).toEqual([{ metricName: 'fastvlm-specq-desired-replicas', targetSize: 1, targetSizeFloat: 1 }]);
  });

  it("a ScaledObject whose metadata names no queue scales the default model's pool (the first of FASTVLM_MODELS)", async () => {
    const res = await keda.getMetricSpec(ref('default-pool-workers', { strategy: 'conservative' }));
    expect(res.metricSpecs).toEqual([{ metricName: 'fastvlm-inference-tiny-random-desired-replicas', targetSize: 1, targetSizeFloat: 1 }]);
    const other = await keda.getMetricSpec(ref('other-pool-workers', { queue: 'inference-tiny-random~40other' }));
    expect(other.metricSpecs).toEqual([{ metricName: 'fastvlm-inference-tiny-random-40other-desired-replicas', targetSize: 1, targetSizeFloat: 1 }]);
  });

  it("GetMetrics answers the desired count in both fields, for the metric name with and without KEDA's s0- prefix", async () => {
    const queue = testQueue(prefix, 'metricq');
    try {
      // 12 waiting jobs a replica clears at 0.5 jobs/s within 10 s: more than one replica.
      await queue.addBulk(Array.from({ length: 12 }, (_, i) => ({ name: 'chat', data: { i } })));
      const so = ref('chat-workers', { queue: 'metricq', strategy: 'conservative', replicaCapacity: '0.5', targetQueueWaitSeconds: '10' });
      const name = (await keda.getMetricSpec(so)).metricSpecs[0]?.metricName ?? '';
      const plain = await keda.getMetrics(so, name);
      const prefixed = await keda.getMetrics(so, `s0-${name}`);
      for (const [res, asked] of [
        [plain, name],
        [prefixed, `s0-${name}`],
      ] as const) {
        expect(res.metricValues).toHaveLength(1);
        const v = res.metricValues[0];
        expect(v?.metricName).toBe(asked);
        expect(v?.metricValue).toBeGreaterThan(1);
        expect(v?.metricValueFloat).toBe(v?.metricValue);
      }
      expect(prefixed.metricValues[0]?.metricValue).toBe(plain.metricValues[0]?.metricValue);
      const wrong = await failure(keda.getMetrics(so, 'some-other-metric'));
      expect(wrong.code).toBe(status.INVALID_ARGUMENT);
      expect(wrong.details).toContain('metricName');
    } finally {
      await queue.close();
    }
  });

  const bad: [string, Record<string, string>][] = [
    ['strategy', { strategy: 'fastest' }],
    ['minReplicas', { minReplicas: '-1' }],
    ['maxReplicas', { maxReplicas: 'ten' }],
    ['targetQueueWaitSeconds', { targetQueueWaitSeconds: '-5' }],
    ['replicaCapacity', { replicaCapacity: 'lots' }],
    ['startupSeconds', { startupSeconds: '1e3' }],
    ['scaleToZeroGraceSeconds', { scaleToZeroGraceSeconds: '100000' }],
    ['minReplicas', { minReplicas: '5', maxReplicas: '2' }],
    ['queueName', { queueName: 'inference' }],
    ['queue', { queue: 'inference:high' }],
  ];

  it.each(bad)('refuses a bad %s with INVALID_ARGUMENT naming it, on every call, and keeps serving', async (field, metadata) => {
    const so = ref('bad-one', metadata);
    const calls = [keda.getMetricSpec(so), keda.isActive(so), keda.getMetrics(so, 'fastvlm-inference-tiny-random-desired-replicas')];
    for (const err of await Promise.all(calls.map(failure))) {
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      expect(err.details).toContain(`scalerMetadata.${field}`);
    }
    const stream = keda.streamIsActive(so);
    const ended = await stream.ended;
    expect(ended.code).toBe(status.INVALID_ARGUMENT);
    expect(ended.details).toContain(`scalerMetadata.${field}`);
    expect(stream.values).toEqual([]);
    expect(await keda.isActive(ref('good-one'))).toBe(false);
  });

  it('serves /health/live, /health/ready and /metrics with every strategy for every ScaledObject, exactly one of them chosen', async () => {
    expect((await fetch(`${scaler.httpUrl}/health/live`)).status).toBe(200);
    await until('readiness', async () => (await fetch(`${scaler.httpUrl}/health/ready`)).status === 200);
    const ready = (await (await fetch(`${scaler.httpUrl}/health/ready`)).json()) as { details: Record<string, { status: string }> };
    expect(ready.details).toMatchObject({ grpc: { status: 'up' }, redis: { status: 'up' } });
    await keda.getMetrics(ref('shadow', { strategy: 'aggressive', queue: 'shadowq' }), 'fastvlm-shadowq-desired-replicas');
    const samples = await scrape(scaler.httpUrl);
    // The scaler's own watch of each configured pool, and the ScaledObject KEDA asked about.
    for (const [scaledObject, queue, chosen] of [
      ['default', 'inference-tiny-random', 'adaptive'],
      ['default', 'inference-tiny-random~40other', 'adaptive'],
      ['apps/shadow', 'shadowq', 'aggressive'],
    ] as const) {
      const series = samples.filter((s) => s.name === 'fastvlm_scaler_desired_replicas' && s.labels.scaled_object === scaledObject && s.labels.queue === queue);
      expect(series.map((s) => s.labels.strategy).sort()).toEqual([...STRATEGY_NAMES].sort());
      expect(series.filter((s) => s.labels.chosen === 'true').map((s) => s.labels.strategy)).toEqual([chosen]);
      expect(value(samples, 'fastvlm_scaler_active', { scaled_object: scaledObject, queue })).toBe(0);
      expect(value(samples, 'fastvlm_scaler_mode', { scaled_object: scaledObject, queue })).toBe(0);
    }
    // apps/chat-workers moved from specq to metricq (earlier tests): its series left specq with it.
    expect(new Set(samples.filter((s) => s.name === 'fastvlm_scaler_desired_replicas').map((s) => s.labels.queue))).toEqual(
      new Set(['inference-tiny-random', 'inference-tiny-random~40other', 'metricq', 'shadowq']),
    );
    for (const signal of ['queued', 'active', 'ready', 'loading', 'arrivals_per_second', 'replica_capacity', 'startup_seconds']) {
      expect(value(samples, 'fastvlm_scaler_signal', { queue: 'shadowq', signal }), signal).toBeDefined();
    }
    expect(value(samples, 'fastvlm_scaler_grpc_requests_total', { method: 'GetMetrics', code: 'OK' })).toBeGreaterThan(0);
    expect(value(samples, 'fastvlm_scaler_grpc_requests_total', { method: 'IsActive', code: 'INVALID_ARGUMENT' })).toBeGreaterThan(0);
  });
});

describe('KEDA external scaler without Redis', () => {
  it('answers UNAVAILABLE while Redis is away, and keeps serving what needs no Redis', async () => {
    const deadUrl = `redis://127.0.0.1:${await freePort()}`;
    const scaler = await startTestScaler(uniquePrefix(), { REDIS_URL: deadUrl });
    const keda = new KedaClient(scaler.grpcAddress);
    try {
      const so = ref('no-redis');
      for (const err of await Promise.all([failure(keda.isActive(so)), failure(keda.getMetrics(so, 'fastvlm-inference-tiny-random-desired-replicas'))])) {
        expect(err.code).toBe(status.UNAVAILABLE);
      }
      const stream = keda.streamIsActive(so);
      expect((await stream.ended).code).toBe(status.UNAVAILABLE);
      expect((await keda.getMetricSpec(so)).metricSpecs).toHaveLength(1);
      expect((await fetch(`${scaler.httpUrl}/health/live`)).status).toBe(200);
      expect((await fetch(`${scaler.httpUrl}/health/ready`)).status).toBe(503);
    } finally {
      keda.close();
      await scaler.close();
    }
  });
});
