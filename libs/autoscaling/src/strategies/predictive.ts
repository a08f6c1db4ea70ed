import type { Decision, StrategyInput } from '../types';
import { adaptive } from './adaptive';
import { clampReplicas, wholeReplicas, withHeadroom } from './demand';

export const PREDICTIVE = {
  /** Square-root headroom on the forecast rate (see `withHeadroom`). */
  headroomBeta: 0.5,
} as const;

/**
 * The adaptive decision, raised to what the forecast arrival rate needs at any
 * minute within the horizon (the start-up time plus one HPA sync and one poll
 * by default): replicas are asked for a start-up time before a predicted rise,
 * and never fewer than the current load needs. While the model has seen less
 * than one season (a day), or has no forecast, it is the adaptive strategy.
 */
export function predictive(input: StrategyInput): Decision {
  const base = adaptive(input);
  const f = input.forecast;
  const last = input.history.at(-1);
  if (!f || !last || f.minutesSeen < f.seasonMinutes) return base;
  const p = input.params;
  const from = Math.floor(last.t / 60);
  const to = Math.floor((last.t + p.forecastHorizonSeconds) / 60);
  let rate = 0;
  for (let m = from; m <= to; m++) rate = Math.max(rate, f.ratePerSecond(m));
  const forecastNeed = wholeReplicas(withHeadroom(rate / p.replicaCapacity, PREDICTIVE.headroomBeta));
  return { ...base, desired: clampReplicas(Math.max(base.desired, forecastNeed), p), forecastRps: rate };
}
