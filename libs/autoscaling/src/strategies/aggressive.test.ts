import { describe, expect, it } from 'vitest';
import { aggressive } from './aggressive';
import { input, series } from './test-series';

describe('aggressive strategy', () => {
  it('drains a backlog within half the target wait with double headroom', () => {
    // 100 queued / (1 job/s × 5 s) = 20 replicas; 20 + √20 = 24.5 → 25.
    const d = aggressive(input(series({ seconds: 120, rate: () => 0, queued: () => 100, ready: () => 25 })));
    expect(d.need).toBe(20);
    expect(d.desired).toBe(25);
  });

  it('scales up in steps of at least half again the replicas there', () => {
    // 10/s needs 10 + √10 = 13.2 → 14 replicas; 10 are ready, so it asks for 1.5 × 10 = 15.
    expect(aggressive(input(series({ seconds: 120, rate: () => 10, ready: () => 10 }))).desired).toBe(15);
  });

  it('sees a burst within seconds through its 6 s window', () => {
    const burst = series({ seconds: 306, rate: (s) => (s >= 300 ? 20 : 1), ready: () => 2 });
    // 20 + √20 = 24.5 → 25 (more than 1.5 × 2).
    expect(aggressive(input(burst)).desired).toBe(25);
  });

  it('holds its replicas through ten quiet minutes, then lets them go', () => {
    const burst = (seconds: number) => series({ seconds, rate: (s) => (s >= 60 && s < 66 ? 20 : 0), ready: () => 25 });
    expect(aggressive(input(burst(60 + 599))).desired).toBe(25);
    expect(aggressive(input(burst(66 + 600 + 60))).desired).toBe(0);
  });
});
