import { describe, expect, it } from 'vitest';
import { FORECAST, emptyForecast, foldMinute, foldMinutes, forecastView, type ForecastState } from './seasonal-forecast';

const DAY = 1_440;
/** Arrivals per minute peaking at 100 at noon, 20 at midnight. */
const daily = (minute: number): number => 60 - 40 * Math.cos((2 * Math.PI * (minute % DAY)) / DAY);

function fit(minutes: number, arrivals: (m: number) => number, from = 0): ForecastState {
  let s = emptyForecast();
  for (let m = from; m < from + minutes; m++) s = foldMinute(s, m, arrivals(m));
  return s;
}

describe('seasonal arrival forecast', () => {
  it('is not trusted before one daily season, then forecasts the daily shape', () => {
    const day = fit(DAY - 1, daily);
    expect(forecastView(day).minutesSeen).toBeLessThan(forecastView(day).seasonMinutes);
    const s = fit(3 * DAY, daily);
    const v = forecastView(s);
    expect(v.minutesSeen).toBe(3 * DAY);
    // From midnight of day 4: six hours ahead is 06:00 (60/min), twelve hours is noon (100/min).
    for (const ahead of [0, 360, 720, 1_080]) {
      const m = 3 * DAY + ahead;
      expect(v.ratePerSecond(m) * 60).toBeGreaterThan(daily(m) * 0.9);
      expect(v.ratePerSecond(m) * 60).toBeLessThan(daily(m) * 1.1);
    }
  });

  it('forecasts a rise before it comes: at 06:00 the 08:00 rate is above the current one', () => {
    const s = fit(3 * DAY + 360, daily);
    const v = forecastView(s);
    expect(v.ratePerSecond(3 * DAY + 480)).toBeGreaterThan(v.ratePerSecond(3 * DAY + 361) * 1.2);
  });

  it('learns a quieter weekend from a few weeks of history', () => {
    // Epoch days 2 and 3 of every week carry half the traffic.
    const weekly = (m: number): number => daily(m) * ((Math.floor(m / DAY) % 7 === 2 || Math.floor(m / DAY) % 7 === 3) ? 0.5 : 1);
    const s = fit(28 * DAY, weekly);
    const v = forecastView(s);
    const weekdayNoon = 28 * DAY + 720; // epoch day 28 ≡ 0
    const weekendNoon = 30 * DAY + 720; // epoch day 30 ≡ 2
    expect(v.ratePerSecond(weekendNoon) / v.ratePerSecond(weekdayNoon)).toBeLessThan(0.8);
  });

  it('does not turn a one-minute burst into a season', () => {
    const s = fit(3 * DAY, (m) => (m === 2 * DAY + 600 ? 5_000 : daily(m)));
    const v = forecastView(foldMinutes(s, []));
    const m = 3 * DAY + 600;
    expect(v.ratePerSecond(m) * 60).toBeLessThan(daily(m) * 1.1);
  });

  it('is a pure fold: the same minutes give the same state, replays and gaps included', () => {
    const a = fit(2 * DAY, daily);
    const b = fit(2 * DAY, daily);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(foldMinute(a, a.lastMinute, 999)).toBe(a);
    const gap = foldMinute(a, a.lastMinute + 30, 10);
    expect(gap.lastMinute).toBe(a.lastMinute + 30);
    expect(gap.minutesSeen).toBe(a.minutesSeen + 1);
    // Survives JSON (the scaler keeps it in Redis).
    expect(JSON.parse(JSON.stringify(gap))).toEqual(gap);
  });

  it('keeps the daily profile at mean 1', () => {
    const s = fit(5 * DAY + 1, daily);
    const mean = s.daily.reduce((x, y) => x + y, 0) / s.daily.length;
    expect(mean).toBeCloseTo(1, 6);
    expect(s.daily).toHaveLength(DAY / FORECAST.binMinutes);
  });
});
