import type { Decision, Strategy } from '@fastvlm/autoscaling';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SCALED_OBJECT, KedaActivation } from './keda';
import { LIST_LENGTH_BASELINE, simulate, type Autoscaler, type ScaleChange } from './simulate';

const idle: Decision = { desired: 0, need: 0, mode: 'stable', forecastRps: null };
const wantsNothing: Strategy = () => idle;

describe('KEDA activation', () => {
  it('wakes a Deployment at zero on the first active check and leaves a running one to the HPA', () => {
    const keda = new KedaActivation(DEFAULT_SCALED_OBJECT, 0);
    expect(keda.check(10, true, 0)).toBe(1);
    expect(keda.check(11, true, 3)).toBeNull();
    expect(keda.lastActive).toBe(11);
  });

  it('scales to zero only on a check more than cooldownPeriod (300 s) after the last active one', () => {
    const keda = new KedaActivation(DEFAULT_SCALED_OBJECT, 0);
    keda.check(100, true, 2);
    expect(keda.check(400, false, 2)).toBeNull();
    expect(keda.check(401, false, 2)).toBe(0);
    expect(keda.check(402, false, 0)).toBeNull();
  });

  it('never scales to zero with minReplicaCount 1', () => {
    const keda = new KedaActivation({ ...DEFAULT_SCALED_OBJECT, minReplicaCount: 1 }, 0);
    expect(keda.check(10_000, false, 2)).toBeNull();
  });
});

describe('KEDA in the simulation: push every second against a 30 s poll', () => {
  // One job at 0.5 s, one at 600.2 s; a warm pod at the start; nothing else.
  const run = (autoscaler: Autoscaler) =>
    simulate({
      arrivals: Float64Array.from([0.5, 600.2]),
      window: { startS: 0, endS: 900 },
      autoscaler,
      replicaRps: 1,
      startupS: 90,
      sloS: 10,
      seed: 1,
    });
  const kedaChanges = (log: readonly ScaleChange[]) => log.filter((c) => c.by === 'keda').map(({ t, from, to }) => ({ t, from, to }));

  it('scales a strategy to zero 300 s after the grace period of the last arrival, and wakes it at the next second after a job arrives', () => {
    const r = run({ kind: 'strategy', strategy: wantsNothing });
    // Active until t = 60 (isActive's 60 s grace after the arrival at 0.5 s); zero on the first check after 60 + 300.
    expect(kedaChanges(r.scaleLog)).toEqual([
      { t: 361, from: 1, to: 0 },
      { t: 601, from: 0, to: 1 },
    ]);
  });

  it('wakes the list-length baseline only at its next 30 s poll, and scales it to zero after the cooldown counted from the last poll that saw a waiting job', () => {
    const r = run(LIST_LENGTH_BASELINE);
    // The first job never waits (a warm pod takes it), so no poll is active: zero at the first poll after 0 + 300.
    expect(kedaChanges(r.scaleLog)).toEqual([
      { t: 330, from: 1, to: 0 },
      { t: 630, from: 0, to: 1 },
    ]);
  });

  it('lets a job that arrives at zero replicas wait for the activation and the pod start-up (81–99 s)', () => {
    const push = run({ kind: 'strategy', strategy: wantsNothing });
    const poll = run(LIST_LENGTH_BASELINE);
    // The second job's wait: activation (0.8 s or 29.8 s after it) plus a start-up in [81, 99] s.
    expect(push.p99QueueWaitS).toBeGreaterThanOrEqual(0.8 + 81);
    expect(push.p99QueueWaitS).toBeLessThanOrEqual(0.8 + 99);
    expect(poll.p99QueueWaitS).toBeGreaterThanOrEqual(29.8 + 81);
    expect(poll.p99QueueWaitS).toBeLessThanOrEqual(29.8 + 99);
  });
});
