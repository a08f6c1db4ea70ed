import { describe, expect, it } from 'vitest';
import { adaptive } from './adaptive';
import { input, series } from './test-series';

/** Rate 2/s for 300 s, a 12/s burst for 10 s, then 2/s again: three replicas ready throughout. */
const spike = (seconds: number) => series({ seconds, rate: (s) => (s >= 300 && s < 310 ? 12 : 2), ready: () => 3 });

describe('adaptive strategy (Knative KPA)', () => {
  it('asks for the 60 s arrival rate plus square-root headroom on a steady load', () => {
    const d = adaptive(input(series({ seconds: 300, rate: () => 4, ready: () => 5 })));
    // need 4 replicas at 1 job/s; 4 + 0.5·√4 = 5.
    expect(d).toEqual({ desired: 5, need: 4, mode: 'stable', forecastRps: null });
  });

  it('panics on a burst that outruns twice the ready replicas and asks for the panic window need', () => {
    const d = adaptive(input(spike(310)));
    expect(d.mode).toBe('panic');
    // panic window (6 s) all at 12/s: 12 + 0.5·√12 = 13.7 → 14.
    expect(d.desired).toBe(14);
  });

  it('never goes down while in panic, and leaves panic one stable window after the last trigger', () => {
    // The last second whose 6 s window still holds twice the 3 ready replicas is second 312.
    const during = adaptive(input(spike(372)));
    expect(during).toMatchObject({ mode: 'panic', desired: 14 });
    const after = adaptive(input(spike(374)));
    expect(after.mode).toBe('stable');
    expect(after.desired).toBeLessThan(14);
  });

  it('is back to the stable need once the burst has left the stable window', () => {
    expect(adaptive(input(spike(400)))).toEqual({ desired: 3, need: 2, mode: 'stable', forecastRps: null });
  });

  it('counts replicas still loading as capacity, so a burst they already cover does not panic', () => {
    const loading = series({ seconds: 310, rate: (s) => (s >= 300 ? 12 : 2), ready: () => 3, loading: () => 5 });
    expect(adaptive(input(loading)).mode).toBe('stable');
  });

  it('follows a ramp one stable window behind: at the end of a 0 → 10/s ramp it asks for the last minute’s mean rate', () => {
    // 600 s from 0 to 10/s; the last 60 s average 9.5/s: 9.5 + 0.5·√9.5 = 11.04 → 12. Enough replicas are there, so no panic.
    const ramp = series({ seconds: 600, rate: (s) => (10 * (s + 0.5)) / 600, ready: (s) => Math.ceil((10 * s) / 600) + 2 });
    const d = adaptive(input(ramp));
    expect(d.mode).toBe('stable');
    expect(d.need).toBeCloseTo(9.5, 6);
    expect(d.desired).toBe(12);
  });

  it('adds replicas to drain a backlog within the target wait', () => {
    // No arrivals, 50 jobs queued for a minute: 50 / (1 job/s × 10 s) = 5 replicas, + 0.5·√5 → 7.
    const d = adaptive(input(series({ seconds: 120, rate: () => 0, queued: () => 50, ready: () => 7 })));
    expect(d).toEqual({ desired: 7, need: 5, mode: 'stable', forecastRps: null });
  });

  it('asks for nothing after silence, and for minReplicas when that is set', () => {
    const silent = series({ seconds: 300, rate: () => 0, ready: () => 1 });
    expect(adaptive(input(silent)).desired).toBe(0);
    expect(adaptive(input(silent, { minReplicas: 2 })).desired).toBe(2);
  });

  it('wakes from zero replicas: any load with nothing ready is a panic', () => {
    const cold = series({ seconds: 120, rate: (s) => (s >= 115 ? 1 : 0), queued: (s) => (s >= 115 ? s - 114 : 0) });
    const d = adaptive(input(cold));
    expect(d.mode).toBe('panic');
    expect(d.desired).toBeGreaterThanOrEqual(1);
  });

  it('caps the desired count at maxReplicas', () => {
    expect(adaptive(input(spike(310), { maxReplicas: 6 })).desired).toBe(6);
  });

  it('measures windows by time, so missing seconds do not change the rate', () => {
    const full = series({ seconds: 300, rate: () => 4, ready: () => 5 });
    const gappy = full.filter((s) => s.t % 7 !== 0);
    expect(adaptive(input(gappy))).toEqual(adaptive(input(full)));
  });
});
