import { describe, expect, it } from 'vitest';
import type { RecordedSample } from './layout';
import { MIN_MEASURED_WORK_MS, measure, measuredCapacity, measuredStartup } from './measure';

/** Samples one second apart whose `work` totals grow by `perSecond` each second. */
function history(seconds: number, perSecond: Partial<Pick<RecordedSample, 'busyMs' | 'busyDone' | 'satMs' | 'satDone'>>, start = 1_000): RecordedSample[] {
  return Array.from({ length: seconds }, (_, i) => ({
    t: start + i,
    arrivals: 0,
    completions: 0,
    queued: 0,
    active: 0,
    ready: 1,
    loading: 0,
    busyMs: (perSecond.busyMs ?? 0) * i,
    busyDone: (perSecond.busyDone ?? 0) * i,
    satMs: (perSecond.satMs ?? 0) * i,
    satDone: (perSecond.satDone ?? 0) * i,
  }));
}

describe('measured capacity and start-up time', () => {
  it('measures capacity from saturated time: jobs done while every slot was taken per second of it', () => {
    // Two workers saturated all along: 2 000 saturated ms a second, 5 jobs a second → 2.5 jobs/s per worker.
    expect(measuredCapacity(history(120, { satMs: 2_000, satDone: 5, busyMs: 2_000, busyDone: 5 }))).toBeCloseTo(2.5, 9);
  });

  it('falls back to busy time (a lower bound) when the workers were never saturated long enough', () => {
    const h = history(120, { busyMs: 1_000, busyDone: 0.5, satMs: 100, satDone: 1 });
    // 120 s × 100 ms = 11.9 s saturated: under the 20 s floor, so busy time decides.
    expect(measuredCapacity(h)).toBeCloseTo(0.5, 9);
  });

  it('gives no capacity below 20 s of busy time, so the prior applies', () => {
    expect(measuredCapacity(history(19, { busyMs: 1_000, busyDone: 3 }))).toBeNull();
    expect(measuredCapacity(history(21, { busyMs: 1_000, busyDone: 3 }))).toBeCloseTo(3, 9);
    expect(measuredCapacity(history(1, { busyMs: 1_000_000, busyDone: 3 }))).toBeNull();
    expect(measuredCapacity([])).toBeNull();
    expect(MIN_MEASURED_WORK_MS).toBe(20_000);
  });

  it('reads only the last 600 s: older work does not dilute a change in capacity', () => {
    const old = history(300, { satMs: 1_000, satDone: 10 }, 1_000);
    const last = old.at(-1) as RecordedSample;
    const recent = history(700, { satMs: 1_000, satDone: 1 }, last.t + 1).map((s) => ({ ...s, satMs: s.satMs + last.satMs + 1_000, satDone: s.satDone + last.satDone + 1 }));
    expect(measuredCapacity([...old, ...recent])).toBeCloseTo(1, 9);
  });

  it('takes the 90th percentile (nearest rank) of the start-up times, null when none', () => {
    expect(measuredStartup([])).toBeNull();
    expect(measuredStartup([42])).toBe(42);
    expect(measuredStartup([10, 20, 30, 40, 50, 60, 70, 80, 90, 100])).toBe(90);
    expect(measuredStartup([100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(10);
    expect(measuredStartup([Number.NaN, -1, 5])).toBe(5);
  });

  it('measures both for resolveParams', () => {
    expect(measure(history(60, { busyMs: 1_000, busyDone: 2 }), [30, 60])).toEqual({ replicaCapacity: 2, startupSeconds: 60 });
    expect(measure([], [])).toEqual({ replicaCapacity: null, startupSeconds: null });
  });
});
