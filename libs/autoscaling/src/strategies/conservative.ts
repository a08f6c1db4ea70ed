import type { Decision, StrategyInput } from '../types';
import { HistoryWindows, clampReplicas, replicasFor, wholeReplicas, withHeadroom } from './demand';

export const CONSERVATIVE = {
  /** Arrival rates are averaged over this window: steady, slow to react to a burst. */
  rateWindowSeconds: 60,
  /** Square-root headroom (see `withHeadroom`). */
  headroomBeta: 0.5,
  /** It gives back at most one replica per this many seconds. */
  stepDownSeconds: 60,
  /** How far back a past need can still hold replicas (the step-down of the largest possible need fits in it). */
  lookBackSeconds: 600,
} as const;

/**
 * Enough replicas to serve the arrival rate of the last minute and drain the
 * backlog within the target wait at the measured capacity. It scales down
 * slowly: from any need of the last ten minutes it steps down by at most one
 * replica a minute (desired = max over past seconds s of need(s) − ⌊age(s) / 60 s⌋).
 */
export function conservative(input: StrategyInput): Decision {
  const { params: p, history } = input;
  const w = new HistoryWindows(history);
  if (w.length === 0) return { desired: clampReplicas(0, p), need: 0, mode: 'stable', forecastRps: null };
  const last = w.length - 1;
  const now = w.sample(last).t;
  const needAt = (i: number): number => replicasFor(w.arrivalRate(i, CONSERVATIVE.rateWindowSeconds), w.sample(i).queued, p);
  // Within one minute of age every need steps down alike, so only each minute's largest need counts.
  const minutes = Math.floor(CONSERVATIVE.lookBackSeconds / CONSERVATIVE.stepDownSeconds) + 1;
  const largest = new Array<number>(minutes).fill(0);
  for (let i = Math.max(0, w.indexAt(now - CONSERVATIVE.lookBackSeconds)); i <= last; i++) {
    const steps = Math.floor((now - w.timeOf(i)) / CONSERVATIVE.stepDownSeconds);
    largest[steps] = Math.max(largest[steps] as number, needAt(i));
  }
  let desired = 0;
  largest.forEach((need, steps) => (desired = Math.max(desired, wholeReplicas(withHeadroom(need, CONSERVATIVE.headroomBeta)) - steps)));
  return { desired: clampReplicas(desired, p), need: needAt(last), mode: 'stable', forecastRps: null };
}
