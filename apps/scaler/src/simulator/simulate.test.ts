import { HISTORY_SECONDS, STRATEGIES, type Decision, type Sample, type Strategy, type StrategyInput } from '@fastvlm/autoscaling';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateArrivals, traceWindow } from './arrivals';
import { autoscalerFor, runScenario } from './scenario';
import { simulate, simulationParams, type SimulateOptions } from './simulate';
import type { Trace } from './trace';

const decision = (desired: number, forecastRps: number | null = null): Decision => ({ desired, need: desired, mode: 'stable', forecastRps });
const fixed =
  (desired: number, forecastRps: number | null = null): Strategy =>
  () =>
    decision(desired, forecastRps);

/** A day-free synthetic trace: 30 minutes at a steady ~3 jobs/s with a burst to ~9 jobs/s in minutes 10–12. */
const trace: Trace = { format: 'per-minute', startS: 0, counts: Float64Array.from({ length: 30 }, (_, m) => (m >= 10 && m < 13 ? 540 : 180)) };

const options = (o: Partial<SimulateOptions> & Pick<SimulateOptions, 'autoscaler'>): SimulateOptions => ({
  arrivals: generateArrivals(trace, 1, 1),
  window: traceWindow(trace),
  replicaRps: 1,
  startupS: 90,
  sloS: 10,
  seed: 1,
  ...o,
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('simulate', () => {
  it('gives the same figures for the same seed and different ones for another seed', () => {
    const run = (seed: number) => {
      const { timeline: _t, ...r } = runScenario({ trace, scaler: 'adaptive', scale: 1, replicaRps: 1, startupS: 90, sloS: 10, seed, timeline: false });
      return r;
    };
    expect(run(3)).toEqual(run(3));
    expect(run(4)).not.toEqual(run(3));
  });

  it('gets the named strategy from @fastvlm/autoscaling: a run with adaptive calls STRATEGIES.adaptive', () => {
    expect(autoscalerFor('adaptive')).toEqual({ kind: 'strategy', strategy: STRATEGIES.adaptive });
    const spy = vi.spyOn(STRATEGIES, 'adaptive');
    const r = runScenario({ trace, scaler: 'adaptive', scale: 1, replicaRps: 1, startupS: 90, sloS: 10, seed: 1, timeline: false });
    expect(spy).toHaveBeenCalledTimes(r.strategyCalls);
    expect(r.strategyCalls).toBeGreaterThanOrEqual(30 * 4);
  });

  it('hands the strategy the ScaledObject settings, the last 900 s of per-second samples ending now, and the forecast of the closed minutes', () => {
    const seen: { params: StrategyInput['params']; history: Sample[]; minutesSeen: number | null }[] = [];
    const spy: Strategy = (input) => {
      seen.push({ params: input.params, history: input.history.map((s) => ({ ...s })), minutesSeen: input.forecast?.minutesSeen ?? null });
      return decision(4);
    };
    simulate(options({ autoscaler: { kind: 'strategy', strategy: spy } }));
    expect(seen[0]?.params).toEqual({
      targetQueueWaitSeconds: 10,
      replicaCapacity: 1,
      minReplicas: 0,
      maxReplicas: 100,
      startupSeconds: 90,
      forecastHorizonSeconds: 120,
      scaleToZeroGraceSeconds: 60,
    });
    expect(seen[0]?.params).toEqual(simulationParams({ replicaRps: 1, startupS: 90, sloS: 10 }));
    // The first call is the HPA sync at the first second, with one sample and no minute closed yet.
    expect(seen[0]?.history.map((s) => s.t)).toEqual([0]);
    expect(seen[0]?.minutesSeen).toBeNull();
    const late = seen.find((c) => c.history.at(-1)?.t === 1_200) as (typeof seen)[number];
    expect(late.history.length).toBe(HISTORY_SECONDS);
    expect(late.history[0]?.t).toBe(1_200 - HISTORY_SECONDS + 1);
    expect(late.history.every((s, i) => i === 0 || s.t === (late.history[i - 1] as Sample).t + 1)).toBe(true);
    expect(late.history.every((s, i) => i === 0 || s.arrivals >= (late.history[i - 1] as Sample).arrivals)).toBe(true);
    expect(late.minutesSeen).toBe(20);
  });

  it('scales to what the strategy desires through the HPA: 1 warm pod, desired 4 → 4 at the first sync', () => {
    const r = simulate(options({ arrivals: Float64Array.from([1, 2, 3]), autoscaler: { kind: 'strategy', strategy: fixed(4, 1) } }));
    expect(r.initialReplicas).toBe(1);
    expect(r.scaleLog).toEqual([{ t: 0, from: 1, to: 4, by: 'hpa' }]);
    expect(r.scaleEvents).toBe(1);
  });

  it('starts warm with ceil(first minute arrivals per second / R) ready pods', () => {
    const arrivals = Float64Array.from({ length: 150 }, (_, i) => i * 0.4);
    expect(simulate(options({ arrivals, autoscaler: { kind: 'strategy', strategy: fixed(3, 1) } })).initialReplicas).toBe(3);
    expect(simulate(options({ arrivals, replicaRps: 2, autoscaler: { kind: 'strategy', strategy: fixed(3, 1) } })).initialReplicas).toBe(2);
  });

  it('counts replica-minutes of every pod that exists, starting ones included', () => {
    // 30 minutes; desired 2 with a pre-warm that keeps KEDA from scaling to zero; 1 warm pod plus 1 starting from t = 0.
    const r = simulate(options({ arrivals: new Float64Array(0), autoscaler: { kind: 'strategy', strategy: fixed(2, 1) } }));
    expect(r.replicaMinutes).toBe(60);
    expect(r.requests).toBe(0);
  });

  it('calls the strategy only at HPA syncs while the queue is busy, and every second when only its pre-warm keeps it active', () => {
    const busy = Float64Array.from({ length: 1_800 * 2 }, (_, i) => i * 0.5);
    expect(simulate(options({ arrivals: busy, autoscaler: { kind: 'strategy', strategy: fixed(4) } })).strategyCalls).toBe(1_800 / 15);
    expect(simulate(options({ arrivals: new Float64Array(0), autoscaler: { kind: 'strategy', strategy: fixed(1, 1) } })).strategyCalls).toBe(1_800);
  });

  it('misses the SLO for most jobs when the strategy holds one replica against 3 jobs/s, and for almost none with 12', () => {
    const one = simulate(options({ autoscaler: { kind: 'strategy', strategy: fixed(1) } }));
    const twelve = simulate(options({ autoscaler: { kind: 'strategy', strategy: fixed(12) } }));
    expect(one.sloViolationPct).toBeGreaterThan(50);
    expect(one.p95QueueWaitS).toBeGreaterThan(10);
    expect(twelve.sloViolationPct).toBeLessThan(1);
    expect(twelve.p99QueueWaitS).toBeLessThan(10);
    expect(twelve.requests).toBe(one.requests);
  });
});
