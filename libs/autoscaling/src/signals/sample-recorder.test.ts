import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisKeys } from '@fastvlm/contracts';
import type { Sample } from '../types';
import { SAMPLES_KEEP, type RecordedSample } from './layout';
import { MINUTE_SETTLE_SECONDS, SampleRecorder, closedMinutes } from './sample-recorder';
import { cleanup, freshKeys, producer } from './test-redis';

const sample = (t: number, over: Partial<RecordedSample> = {}): RecordedSample => ({
  t,
  arrivals: 0,
  completions: 0,
  queued: 0,
  active: 0,
  ready: 0,
  loading: 0,
  busyMs: 0,
  busyDone: 0,
  satMs: 0,
  satDone: 0,
  ...over,
});

/** One sample a second from `from` to `to` (inclusive), arrivals growing by `rate` a second. */
const seconds = (from: number, to: number, rate: (t: number) => number = () => 1): Sample[] => {
  const out: Sample[] = [];
  let arrivals = 0;
  for (let t = from; t <= to; t++) {
    arrivals += rate(t);
    out.push(sample(t, { arrivals }));
  }
  return out;
};

describe('sample recorder (real Redis)', () => {
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

  it('records each second once across two writers: the first write stands, the second is refused', async () => {
    const one = new SampleRecorder(a, keys);
    const two = new SampleRecorder(b, keys);
    const results = await Promise.all([one.record('q1', sample(1_000, { queued: 3, busyMs: 12 })), two.record('q1', sample(1_000, { queued: 7 }))]);
    expect(results.filter(Boolean)).toHaveLength(1);
    const history = await one.history('q1', 990, 1_010);
    expect(history).toHaveLength(1);
    expect([3, 7]).toContain(history[0]?.queued);
    // A writer whose clock is a second behind cannot slip an older second in after a newer one.
    expect(await two.record('q1', sample(1_001, { queued: 1 }))).toBe(true);
    expect(await one.record('q1', sample(1_000, { queued: 9 }))).toBe(false);
    expect((await one.history('q1', 0, 2_000)).map((s) => s.t)).toEqual([1_000, 1_001]);
  });

  it('reads back every field of the seconds asked for, oldest first', async () => {
    const r = new SampleRecorder(a, keys);
    const written = [sample(50, { arrivals: 4, completions: 3, queued: 2, active: 1, ready: 5, loading: 1, busyMs: 9, busyDone: 8, satMs: 7, satDone: 6 }), sample(51), sample(53)];
    for (const s of written) await r.record('q2', s);
    expect(await r.history('q2', 50, 53)).toEqual(written);
    expect(await r.history('q2', 51, 52)).toEqual([written[1]]);
    expect(await r.history('q2', 54, 60)).toEqual([]);
  });

  it('reads on from what it has read: the window slides, and seconds another replica records later still show', async () => {
    const mine = new SampleRecorder(a, keys);
    const other = new SampleRecorder(b, keys);
    for (const t of [2_000, 2_001, 2_002]) await mine.record('q4', sample(t, { queued: t - 2_000 }));
    expect((await mine.history('q4', 1_990, 2_004)).map((x) => x.t)).toEqual([2_000, 2_001, 2_002]);
    // Seconds 2 003 and 2 005 arrive through another replica after this one read up to 2 004.
    await other.record('q4', sample(2_003, { queued: 3 }));
    await other.record('q4', sample(2_005, { queued: 5 }));
    const slid = await mine.history('q4', 2_001, 2_006);
    expect(slid).toEqual(await new SampleRecorder(b, keys).history('q4', 2_001, 2_006));
    expect(slid.map((x) => [x.t, x.queued])).toEqual([
      [2_001, 1],
      [2_002, 2],
      [2_003, 3],
      [2_005, 5],
    ]);
    // A window that starts past everything known is read whole.
    expect((await mine.history('q4', 2_005, 2_010)).map((x) => x.t)).toEqual([2_005]);
  });

  it('trims the stream to about SAMPLES_KEEP entries', async () => {
    const r = new SampleRecorder(a, keys);
    const p = a.pipeline();
    for (let t = 1; t <= SAMPLES_KEEP + 500; t++) p.xadd(keys.autoscale('q3', 'samples'), `${t * 1000}-0`, 't', String(t));
    await p.exec();
    await r.record('q3', sample(SAMPLES_KEEP + 501));
    const len = await a.xlen(keys.autoscale('q3', 'samples'));
    expect(len).toBeLessThan(SAMPLES_KEEP + 200);
    expect(len).toBeGreaterThanOrEqual(SAMPLES_KEEP);
  });

  it('appends each closed minute once across two writers, and reads the minutes after one', async () => {
    const one = new SampleRecorder(a, keys);
    const two = new SampleRecorder(b, keys);
    const minutes = [
      { minute: 100, arrivals: 5 },
      { minute: 101, arrivals: 0 },
      { minute: 103, arrivals: 12 },
    ];
    const added = await Promise.all([one.appendMinutes('q4', minutes), two.appendMinutes('q4', minutes)]);
    expect(added[0] + added[1]).toBe(3);
    expect(await one.lastMinute('q4')).toBe(103);
    expect(await one.minutesAfter('q4', null)).toEqual(minutes);
    expect(await one.minutesAfter('q4', 101)).toEqual([{ minute: 103, arrivals: 12 }]);
    expect(await one.lastMinute('empty')).toBeNull();
  });
});

describe('minute rollup', () => {
  const nowAfter = (minute: number) => (minute + 1) * 60 + MINUTE_SETTLE_SECONDS;

  it('counts the arrivals of each closed minute from the counter at its two boundaries', () => {
    // 1 arrival a second, 3 a second during minute 101.
    const h = seconds(100 * 60 - 10, 102 * 60 + 30, (t) => (t >= 101 * 60 && t < 102 * 60 ? 3 : 1));
    expect(closedMinutes(h, null, nowAfter(101))).toEqual([
      { minute: 100, arrivals: 60 },
      { minute: 101, arrivals: 180 },
    ]);
    expect(closedMinutes(h, 100, nowAfter(101))).toEqual([{ minute: 101, arrivals: 180 }]);
  });

  it('waits a moment after a minute ends before closing it, so its last second is recorded', () => {
    const h = seconds(100 * 60 - 10, 101 * 60 + 1);
    expect(closedMinutes(h, null, 101 * 60 + MINUTE_SETTLE_SECONDS - 1)).toEqual([]);
    expect(closedMinutes(h, null, 101 * 60 + MINUTE_SETTLE_SECONDS)).toEqual([{ minute: 100, arrivals: 60 }]);
  });

  it('leaves out a minute whose boundary the history does not show (the scaler was away)', () => {
    const h = [...seconds(100 * 60 - 10, 100 * 60 + 20), ...seconds(101 * 60 + 30, 103 * 60 + 5).map((s) => ({ ...s, arrivals: s.arrivals + 1_000 }))];
    // Minute 100 ends in the gap, so does 101 start: only 102 has both readings.
    expect(closedMinutes(h, null, nowAfter(102))).toEqual([{ minute: 102, arrivals: 60 }]);
  });

  it('reads a boundary from the last sample up to 5 s before it, not older', () => {
    // Arrivals at second t: t - 5989. The minute ends at 6060; its last sample is at 6055 (5 s before).
    const h = seconds(100 * 60 - 10, 101 * 60 + 10).filter((s) => s.t <= 101 * 60 - 5 || s.t >= 101 * 60);
    expect(closedMinutes(h, null, nowAfter(100))).toEqual([{ minute: 100, arrivals: 66 - 10 }]);
    const h2 = seconds(100 * 60 - 10, 101 * 60 + 10).filter((s) => s.t <= 101 * 60 - 6 || s.t >= 101 * 60);
    expect(closedMinutes(h2, null, nowAfter(100))).toEqual([]);
  });
});
