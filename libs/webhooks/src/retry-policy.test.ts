import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY, RETRY_JITTER, minimumRetrySpanMs, nominalRetryDelayMs, retryDelayMs } from './retry-policy';

const HOUR = 3_600_000;

describe('webhook retry schedule', () => {
  it('spans at least 24 h with the defaults (105 750 s: 29 h 22 min 30 s) before jitter', () => {
    expect(minimumRetrySpanMs(DEFAULT_RETRY_POLICY)).toBe(105_750_000);
    expect(minimumRetrySpanMs(DEFAULT_RETRY_POLICY)).toBeGreaterThanOrEqual(24 * HOUR);
  });

  it('doubles from the base and stops at the cap', () => {
    const delays = Array.from({ length: 15 }, (_, i) => nominalRetryDelayMs(i + 1, DEFAULT_RETRY_POLICY) / 1000);
    expect(delays).toEqual([10, 20, 40, 80, 160, 320, 640, 1280, 2560, 5120, 10_240, 20_480, 21_600, 21_600, 21_600]);
    expect(nominalRetryDelayMs(1_000, DEFAULT_RETRY_POLICY)).toBe(6 * HOUR);
  });

  it('adds up to 20 % jitter and never takes any off, so every draw keeps the 24 h span', () => {
    for (const n of [1, 5, 13]) {
      const nominal = nominalRetryDelayMs(n, DEFAULT_RETRY_POLICY);
      expect(retryDelayMs(n, DEFAULT_RETRY_POLICY, () => 0)).toBe(nominal);
      expect(retryDelayMs(n, DEFAULT_RETRY_POLICY, () => 0.999_999)).toBe(Math.round(nominal * (1 + RETRY_JITTER * 0.999_999)));
      const drawn = retryDelayMs(n, DEFAULT_RETRY_POLICY);
      expect(drawn).toBeGreaterThanOrEqual(nominal);
      expect(drawn).toBeLessThanOrEqual(nominal * (1 + RETRY_JITTER));
    }
  });
});
