import { QueueKeys } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisKeys } from '@fastvlm/contracts';
import { ForecastStore } from './forecast-store';
import { QueueObserver } from './queue-observer';
import { SampleRecorder } from './sample-recorder';
import { SignalReader } from './signal-reader';
import { cleanup, freshKeys, producer } from './test-redis';

/** An epoch minute (2025); the test chooses the clock, so nothing waits for real minutes to pass. */
const B = 29_000_000;

describe('queue observer (real Redis)', () => {
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

  const observerOn = (redis: Redis): QueueObserver => {
    const recorder = new SampleRecorder(redis, keys);
    return new QueueObserver(new SignalReader(redis, keys, () => Promise.resolve(1)), recorder, new ForecastStore(redis, keys, recorder));
  };

  it('records the reading once, rolls closed minutes up once and folds them once, with two replicas observing together', async () => {
    // A history of one arrival a second from 10 s before minute B to the end of minute B+1.
    const recorder = new SampleRecorder(a, keys);
    let arrivals = 0;
    for (let t = B * 60 - 10; t < (B + 2) * 60; t++) {
      arrivals += 1;
      await recorder.record('q', { t, arrivals, completions: 0, queued: 0, active: 0, ready: 1, loading: 0, busyMs: 0, busyDone: 0, satMs: 0, satDone: 0 });
    }
    await a.set(keys.autoscale('q', 'arrivals'), arrivals + 3);
    const nowMs = ((B + 2) * 60 + 3) * 1000 + 250;
    const [one, two] = await Promise.all([observerOn(a).observe('q', nowMs), observerOn(b).observe('q', nowMs)]);

    for (const obs of [one, two]) {
      expect(obs.sample).toMatchObject({ t: (B + 2) * 60 + 3, arrivals: arrivals + 3, ready: 1 });
      expect(obs.history.at(-1)).toEqual(obs.sample);
      expect(obs.history[0]?.t).toBe(B * 60 - 10);
      expect(obs.history).toHaveLength(130 + 1);
      expect(obs.forecast?.lastMinute).toBe(B + 1);
      expect(obs.forecast?.minutesSeen).toBe(2);
    }
    // Minute B-1 has no reading at its start: only B and B+1 are rolled up, 60 arrivals each.
    expect(await recorder.minutesAfter('q', null)).toEqual([
      { minute: B, arrivals: 60 },
      { minute: B + 1, arrivals: 60 },
    ]);
    expect(await recorder.history('q', (B + 2) * 60 + 3, (B + 2) * 60 + 3)).toHaveLength(1);

    // A second later nothing new has closed: no minute added, the model as it was.
    const later = await observerOn(b).observe('q', nowMs + 1_000);
    expect(later.forecast).toEqual(one.forecast);
    expect(await recorder.lastMinute('q')).toBe(B + 1);
  });

  it('reads the last 900 s of recorded history, leaves this second out and puts the live reading in its place', async () => {
    const recorder = new SampleRecorder(a, keys);
    const t = B * 60 + 30;
    const empty = { arrivals: 0, completions: 0, queued: 0, active: 0, ready: 0, loading: 0, busyMs: 0, busyDone: 0, satMs: 0, satDone: 0 };
    for (const at of [t - 901, t - 900, t]) await recorder.record('r', { ...empty, t: at });
    // A job arrived after another replica recorded this second: the decision must see it anyway.
    await a.rpush(new QueueKeys(keys.bull()).toKey('r', 'wait'), 'job-1');
    const obs = await observerOn(a).observe('r', t * 1000 + 900);
    expect(obs.history.map((s) => [s.t, s.queued])).toEqual([
      [t - 900, 0],
      [t, 1],
    ]);
  });
});
