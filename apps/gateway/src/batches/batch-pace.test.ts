import { describe, expect, it } from 'vitest';
import { projectedEnd, queuedTarget } from './batch-pace';

const S = { minQueued: 16, lookaheadS: 60, maxInFlight: 1000 };

describe('queuedTarget', () => {
  it('keeps the floor for a relaxed window: 2,000 requests over 24 h need 0.02/s', () => {
    expect(queuedTarget(2000, 24 * 3_600_000, S)).toBe(16);
  });
  it('keeps a minute of the needed pace for a short window: 50,000 requests in 1 h need 13.9/s, 834 waiting', () => {
    expect(queuedTarget(50_000, 3_600_000, S)).toBe(834);
  });
  it('never passes the in-flight cap, even at the window’s very end', () => {
    expect(queuedTarget(50_000, 0, S)).toBe(1000);
    expect(queuedTarget(50_000, -5000, S)).toBe(1000);
  });
});

describe('projectedEnd', () => {
  it('extrapolates the pace since the batch started', () => {
    // 25 of 100 done in 10 s: 30 s more.
    expect(projectedEnd(100, 25, 1_000_000, 1_010_000)).toBe(1_040_000);
  });
  it('has no projection before the first request ends', () => {
    expect(projectedEnd(100, 0, 1_000_000, 1_010_000)).toBeNull();
  });
});
