import type { Sample, ScalingParams, StrategyInput } from '../types';

/** Settings for strategy tests: capacity 1 job/s per replica, a 10 s target wait, no bounds in the way. */
export const TEST_PARAMS: ScalingParams = {
  targetQueueWaitSeconds: 10,
  replicaCapacity: 1,
  minReplicas: 0,
  maxReplicas: 1000,
  startupSeconds: 90,
  forecastHorizonSeconds: 120,
  scaleToZeroGraceSeconds: 60,
};

export interface SeriesShape {
  /** Seconds of history (one sample each). */
  seconds: number;
  /** Arrivals per second during second `s` (0 = the oldest). */
  rate: (s: number) => number;
  queued?: (s: number) => number;
  active?: (s: number) => number;
  ready?: (s: number) => number;
  loading?: (s: number) => number;
  /** Epoch second of the first sample. Default 1 000 000. */
  start?: number;
}

/** A synthetic history: arrivals accumulate exactly `rate(s)` each second (fractions kept, so rates are exact). */
export function series(shape: SeriesShape): Sample[] {
  const out: Sample[] = [];
  let arrivals = 0;
  const start = shape.start ?? 1_000_000;
  for (let s = 0; s < shape.seconds; s++) {
    arrivals += shape.rate(s);
    out.push({
      t: start + s,
      arrivals,
      completions: 0,
      queued: shape.queued?.(s) ?? 0,
      active: shape.active?.(s) ?? 0,
      ready: shape.ready?.(s) ?? 0,
      loading: shape.loading?.(s) ?? 0,
    });
  }
  return out;
}

export function input(history: Sample[], params: Partial<ScalingParams> = {}): StrategyInput {
  return { params: { ...TEST_PARAMS, ...params }, history, forecast: null };
}
