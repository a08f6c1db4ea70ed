import { describe, expect, it } from 'vitest';
import { isActive } from './activity';
import { adaptive } from './strategies/adaptive';
import { input, series } from './strategies/test-series';
import type { StrategyInput } from './types';

const active = (i: StrategyInput): boolean => isActive(i, adaptive(i));

describe('queue activity (KEDA scales 0 ↔ 1 on it)', () => {
  it('is active while jobs wait, including with no arrivals', () => {
    expect(active(input(series({ seconds: 300, rate: () => 0, queued: (s) => (s === 299 ? 1 : 0) })))).toBe(true);
  });

  it('is active while jobs run, with nothing waiting', () => {
    expect(active(input(series({ seconds: 300, rate: () => 0, active: () => 2 })))).toBe(true);
  });

  it('stays active for the grace period after the last arrival, then not', () => {
    const lastArrivalAt = (seconds: number) => series({ seconds, rate: (s) => (s === 100 ? 1 : 0) });
    expect(active(input(lastArrivalAt(100 + 60)))).toBe(true);
    expect(active(input(lastArrivalAt(100 + 62)))).toBe(false);
  });

  it('does not wake an idle queue when the scaler has just started', () => {
    expect(active(input(series({ seconds: 3, rate: () => 0 })))).toBe(false);
    expect(active(input([]))).toBe(false);
  });

  it('is active when the forecast expects a job within the horizon', () => {
    const idle = input(series({ seconds: 300, rate: () => 0 }));
    expect(isActive(idle, { desired: 1, need: 0, mode: 'stable', forecastRps: 0.05 })).toBe(true);
    expect(isActive(idle, { desired: 0, need: 0, mode: 'stable', forecastRps: 0.001 })).toBe(false);
  });
});
