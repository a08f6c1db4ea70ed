import { describe, expect, it } from 'vitest';
import type { ForecastView } from '../types';
import { adaptive } from './adaptive';
import { predictive } from './predictive';
import { input, series } from './test-series';

/** A forecast that has seen `minutesSeen` minutes and predicts `rate(minute)` arrivals per second. */
const forecast = (minutesSeen: number, rate: (minute: number) => number): ForecastView => ({
  minutesSeen,
  seasonMinutes: 1_440,
  lastMinute: 0,
  ratePerSecond: rate,
});

/** 2/s now, samples ending at epoch second 1 000 299 (minute 16 671). */
const now = series({ seconds: 300, rate: () => 2, ready: () => 3 });
const nowMinute = Math.floor((now.at(-1)?.t ?? 0) / 60);

describe('predictive strategy', () => {
  it('is the adaptive strategy while the model has seen less than one season', () => {
    const f = forecast(1_439, () => 50);
    expect(predictive({ ...input(now), forecast: f })).toEqual(adaptive(input(now)));
    expect(predictive(input(now))).toEqual(adaptive(input(now)));
  });

  it('asks a start-up time ahead for the rise the forecast sees within its horizon', () => {
    // 10/s from two minutes ahead (inside the 120 s horizon): 10 + 0.5·√10 = 11.6 → 12.
    const f = forecast(10_000, (m) => (m >= nowMinute + 2 ? 10 : 2));
    expect(predictive({ ...input(now), forecast: f })).toMatchObject({ desired: 12, forecastRps: 10 });
  });

  it('ignores a rise beyond its horizon', () => {
    const f = forecast(10_000, (m) => (m >= nowMinute + 5 ? 10 : 2));
    expect(predictive({ ...input(now), forecast: f })).toMatchObject({ desired: 3, forecastRps: 2 });
  });

  it('never asks for less than the current load needs, whatever the forecast', () => {
    const busy = series({ seconds: 300, rate: () => 8, ready: () => 10 });
    const f = forecast(10_000, () => 0);
    expect(predictive({ ...input(busy), forecast: f }).desired).toBe(adaptive(input(busy)).desired);
  });
});
