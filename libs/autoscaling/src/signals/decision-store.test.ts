import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisKeys } from '@fastvlm/contracts';
import { parseScalerMetadata } from '../params';
import { DEFAULT_SCALED_OBJECT, DecisionStore, decisionRecord } from './decision-store';
import { evaluate } from './evaluate';
import { DECISION_TTL_S, type RecordedSample } from './layout';
import { cleanup, freshKeys, producer } from './test-redis';

const now: RecordedSample = { t: 2_000, arrivals: 30, completions: 10, queued: 20, active: 2, ready: 2, loading: 1, busyMs: 0, busyDone: 0, satMs: 0, satDone: 0 };
const history: RecordedSample[] = [{ ...now, t: 1_970, arrivals: 0, queued: 0 }, now];

describe('decision record (real Redis)', () => {
  let redis: Redis;
  let keys: RedisKeys;

  beforeAll(async () => {
    redis = await producer();
    keys = freshKeys();
  });
  afterAll(async () => {
    await cleanup(redis, keys);
    redis.disconnect();
  });

  it('records what every strategy would ask for, the signals and where each figure came from, with a short TTL', async () => {
    const settings = parseScalerMetadata({ strategy: 'conservative', replicaCapacity: '0.5', queue: 'q1' }, 'inference');
    const ev = evaluate(settings, { history, startupSeconds: [30, 50], forecast: null });
    const record = decisionRecord(2_000_500, 'ns/so', ev, now);
    const store = new DecisionStore(redis, keys);
    expect(await store.write(record)).toBe(true);
    expect(await store.read('q1')).toEqual(record);
    expect(record.desired.conservative).toBe(ev.decision.desired);
    expect(Object.keys(record.desired).sort()).toEqual(['adaptive', 'aggressive', 'conservative', 'predictive']);
    expect(record.signals).toMatchObject({ queued: 20, active: 2, ready: 2, loading: 1, arrivalsPerSecond: 1, replicaCapacity: 0.5, replicaCapacityMeasured: false, startupSeconds: 50, startupMeasured: true });
    const ttl = await redis.ttl(keys.autoscale('q1', 'decision'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(DECISION_TTL_S);
  });

  it("does not let the scaler's default watch replace a live record of a real ScaledObject on the same queue", async () => {
    const settings = parseScalerMetadata({ queue: 'q2' }, 'inference');
    const ev = evaluate(settings, { history, startupSeconds: [], forecast: null });
    const store = new DecisionStore(redis, keys);
    expect(await store.write(decisionRecord(1, DEFAULT_SCALED_OBJECT, ev, now))).toBe(true);
    expect(await store.write(decisionRecord(2, 'ns/so', ev, now))).toBe(true);
    expect(await store.write(decisionRecord(3, DEFAULT_SCALED_OBJECT, ev, now))).toBe(false);
    expect((await store.read('q2'))?.scaledObject).toBe('ns/so');
    expect(await store.write(decisionRecord(4, 'ns/other', ev, now))).toBe(true);
    await redis.del(keys.autoscale('q2', 'decision'));
    expect(await store.write(decisionRecord(5, DEFAULT_SCALED_OBJECT, ev, now))).toBe(true);
    expect((await store.read('q2'))?.at).toBe(5);
  });
});
