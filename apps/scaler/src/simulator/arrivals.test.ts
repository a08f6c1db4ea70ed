import { describe, expect, it } from 'vitest';
import { autoScale, countInRange, generateArrivals, peakMinuteRate, traceWindow } from './arrivals';
import type { Trace } from './trace';

const perMinute = (counts: number[], startS = 0): Trace => ({ format: 'per-minute', startS, counts: Float64Array.from(counts) });
const perRequest = (times: number[]): Trace => ({ format: 'per-request', times: Float64Array.from(times) });
const ascending = (xs: Float64Array): boolean => xs.every((x, i) => i === 0 || (xs[i - 1] as number) <= x);

describe('arrivals from a per-minute trace', () => {
  it('puts exactly count × scale arrivals in each minute when that is whole, at times inside the minute, ascending', () => {
    const a = generateArrivals(perMinute([10, 0, 3], 600), 1, 1);
    expect(a.length).toBe(13);
    expect(countInRange(a, 600, 660)).toBe(10);
    expect(countInRange(a, 660, 720)).toBe(0);
    expect(countInRange(a, 720, 780)).toBe(3);
    expect(ascending(a)).toBe(true);
  });

  it('rounds a fractional count × scale stochastically: floor or floor + 1, right on average', () => {
    const minutes = 2_000;
    const a = generateArrivals(perMinute(new Array<number>(minutes).fill(3)), 0.5, 5);
    for (let m = 0; m < minutes; m++) expect([1, 2]).toContain(countInRange(a, 60 * m, 60 * m + 60));
    expect(a.length / minutes).toBeGreaterThan(1.45);
    expect(a.length / minutes).toBeLessThan(1.55);
  });

  it('is the same for the same seed and differs for another seed', () => {
    const t = perMinute([30, 40, 50]);
    expect(generateArrivals(t, 1.3, 9)).toEqual(generateArrivals(t, 1.3, 9));
    expect(generateArrivals(t, 1.3, 10)).not.toEqual(generateArrivals(t, 1.3, 9));
  });
});

describe('arrivals from a per-request trace', () => {
  const times = Array.from({ length: 1_000 }, (_, i) => 120 + i * 0.1);

  it('keeps every request once at scale 1', () => {
    expect(Array.from(generateArrivals(perRequest(times), 1, 1))).toEqual(times);
  });

  it('thins by Bernoulli(scale) below 1', () => {
    const a = generateArrivals(perRequest(times), 0.25, 1);
    expect(a.length).toBeGreaterThan(200);
    expect(a.length).toBeLessThan(300);
    const original = new Set(times);
    expect(Array.from(a).every((t) => original.has(t))).toBe(true);
  });

  it('above 1 keeps each request and adds floor(scale) − 1 copies plus one with probability frac(scale), each within 1 s after it', () => {
    const one = generateArrivals(perRequest([500]), 2.5, 3);
    expect([2, 3]).toContain(one.length);
    expect(one[0]).toBe(500);
    expect(Array.from(one).every((t) => t >= 500 && t < 501)).toBe(true);
    const many = generateArrivals(perRequest(times), 2.5, 3);
    expect(many.length).toBeGreaterThan(2_400);
    expect(many.length).toBeLessThan(2_600);
    expect(ascending(many)).toBe(true);
  });
});

describe('trace windows and auto scale', () => {
  it('replays a per-request trace from the start of its first minute to a whole minute after its last request and its copies', () => {
    expect(traceWindow(perRequest([125.5, 170, 239.5]))).toEqual({ startS: 120, endS: 300 });
    expect(traceWindow(perMinute([1, 2, 3], 600))).toEqual({ startS: 600, endS: 780 });
  });

  it('finds the peak rate over whole epoch minutes, not over any 60 s', () => {
    // 30 requests at the end of minute 2 and 30 at the start of minute 3: 30 per whole minute, 60 within 60 s.
    const times = [...Array.from({ length: 30 }, (_, i) => 150 + i), ...Array.from({ length: 30 }, (_, i) => 180 + i)];
    expect(peakMinuteRate(perRequest(times))).toBe(0.5);
    expect(peakMinuteRate(perMinute([60, 120, 30]))).toBe(2);
  });

  it('scales so that the peak minute needs 8 replicas: 8 × R / peak rate', () => {
    expect(autoScale(perMinute([60, 120, 30]), 1)).toBe(4);
    expect(autoScale(perMinute([60, 120, 30]), 0.5)).toBe(2);
    expect(() => autoScale(perMinute([0, 0]), 1)).toThrow(/no requests/);
  });
});
