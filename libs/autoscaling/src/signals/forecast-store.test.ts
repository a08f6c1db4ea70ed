import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisKeys } from '@fastvlm/contracts';
import { emptyForecast, foldMinutes } from '../forecast/seasonal-forecast';
import { ForecastStore } from './forecast-store';
import { SampleRecorder } from './sample-recorder';
import { cleanup, freshKeys, producer } from './test-redis';

const minutes = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ minute: from + i, arrivals: 10 + (i % 7) }));

describe('forecast store (real Redis)', () => {
  let a: Redis;
  let b: Redis;
  let keys: RedisKeys;

  beforeAll(async () => {
    [a, b] = await Promise.all([producer(), producer()]);
    keys = freshKeys();
  });
  afterAll(async () => {
    await cleanup(a, keys);
    a.disconnect();
    b.disconnect();
  });

  const storeOn = (redis: Redis): ForecastStore => new ForecastStore(redis, keys, new SampleRecorder(redis, keys));

  it('has no model before any minute, and folding nothing writes nothing', async () => {
    const s = storeOn(a);
    expect(await s.read('q0')).toBeNull();
    expect(await s.fold('q0')).toEqual({ state: null, folded: false });
    expect(await a.exists(keys.autoscale('q0', 'forecast'))).toBe(0);
  });

  it('folds each minute once when two replicas fold at the same time', async () => {
    const first = minutes(1_000, 200);
    await new SampleRecorder(a, keys).appendMinutes('q1', first);
    const one = storeOn(a);
    const two = storeOn(b);
    const results = await Promise.all([one.fold('q1'), two.fold('q1'), one.fold('q1'), two.fold('q1')]);
    expect(results.filter((r) => r.folded)).toHaveLength(1);
    const expected = foldMinutes(emptyForecast(), first);
    expect(await one.read('q1')).toEqual(expected);
    expect(await a.hget(keys.autoscale('q1', 'forecast'), 'minute')).toBe(String(1_199));

    // The next minutes are folded onto the stored model, not from scratch and not twice.
    const next = minutes(1_200, 3);
    await new SampleRecorder(b, keys).appendMinutes('q1', next);
    const again = await Promise.all([two.fold('q1'), one.fold('q1')]);
    expect(again.filter((r) => r.folded)).toHaveLength(1);
    const state = await two.read('q1');
    expect(state?.minutesSeen).toBe(203);
    expect(state).toEqual(foldMinutes(expected, next));
    expect(await one.fold('q1')).toEqual({ state, folded: false });
  });

  it('rebuilds a model it cannot read from the recorded minutes', async () => {
    const recorded = minutes(5_000, 30);
    await new SampleRecorder(a, keys).appendMinutes('q2', recorded);
    await a.hset(keys.autoscale('q2', 'forecast'), 'minute', '4999', 'state', '{not json');
    const s = storeOn(a);
    expect(await s.read('q2')).toBeNull();
    const r = await s.fold('q2');
    expect(r.folded).toBe(true);
    expect(r.state).toEqual(foldMinutes(emptyForecast(), recorded));
  });
});
