import { describe, expect, it } from 'vitest';
import { conservative } from './conservative';
import { input, series } from './test-series';

describe('conservative strategy', () => {
  it('asks for the last minute’s arrival rate plus square-root headroom', () => {
    expect(conservative(input(series({ seconds: 300, rate: () => 4, ready: () => 5 })))).toEqual({ desired: 5, need: 4, mode: 'stable', forecastRps: null });
  });

  it('drains the backlog within the target wait at the replicas’ capacity', () => {
    // 3/s arrive at 2 jobs/s per replica (1.5) and 40 queued drain in 10 s at 2 jobs/s (2): 3.5 + 0.5·√3.5 = 4.4 → 5.
    const d = conservative(input(series({ seconds: 120, rate: () => 3, queued: () => 40, ready: () => 4 }), { replicaCapacity: 2 }));
    expect(d.need).toBeCloseTo(3.5, 9);
    expect(d.desired).toBe(5);
  });

  it('follows a step up within one rate window', () => {
    const step = series({ seconds: 400, rate: (s) => (s < 300 ? 2 : 8), ready: () => 3 });
    expect(conservative(input(step)).desired).toBe(10);
  });

  it('rises with a ramp and never lags it by more than its one-minute window', () => {
    const ramp = (seconds: number) => series({ seconds, rate: (s) => (10 * (s + 0.5)) / 600, ready: () => 12 });
    let previous = 0;
    for (let end = 120; end <= 600; end += 60) {
      const d = conservative(input(ramp(end)));
      expect(d.desired).toBeGreaterThanOrEqual(previous);
      // The mean rate of the last minute of a linear ramp is the rate 30 s ago.
      expect(d.need).toBeCloseTo((10 * (end - 30)) / 600, 6);
      previous = d.desired;
    }
  });

  it('scales down by at most one replica a minute after the load falls', () => {
    const fall = (seconds: number) => series({ seconds, rate: (s) => (s < 600 ? 8 : 2), ready: () => 10 });
    const desired: number[] = [];
    for (let end = 600; end <= 1_200; end += 60) desired.push(conservative(input(fall(end))).desired);
    expect(desired[0]).toBe(10);
    for (let i = 1; i < desired.length; i++) {
      expect((desired[i - 1] as number) - (desired[i] as number)).toBeLessThanOrEqual(1);
      expect(desired[i]).toBeLessThanOrEqual(desired[i - 1] as number);
    }
    // Ten minutes later it has reached what 2/s needs: 2 + 0.5·√2 → 3.
    expect(desired.at(-1)).toBe(3);
  });

  it('asks for nothing after ten silent minutes', () => {
    expect(conservative(input(series({ seconds: 900, rate: (s) => (s < 100 ? 1 : 0) }))).desired).toBe(0);
  });
});
