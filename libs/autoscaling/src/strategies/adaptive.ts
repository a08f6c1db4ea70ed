import type { Decision, StrategyInput } from '../types';
import { HistoryWindows, clampReplicas, replicasFor, wholeReplicas, withHeadroom } from './demand';

/** Knative KPA's defaults: a 60 s stable window, a panic window of 10 % of it, panic at 200 % of what is there. */
export const ADAPTIVE = {
  stableWindowSeconds: 60,
  panicWindowSeconds: 6,
  panicThreshold: 2,
  /** Square-root headroom (see `withHeadroom`). */
  headroomBeta: 0.5,
} as const;

/**
 * Knative's KPA on this queue's load. Each second has two needs: the arrival
 * rate and the mean backlog over the stable window (60 s), and over the panic
 * window (6 s). Panic starts at a second whose panic need is at least twice the
 * replicas there or on their way (ready + loading), lasts while that holds, and
 * ends one stable window after the last such second. In panic the desired count
 * is the largest stable or panic need seen since the panic began, so it never
 * goes down; otherwise it is the stable need.
 *
 * The mode is derived from the history every time, not kept in memory, so every
 * scaler replica and the simulator decide alike.
 */
export function adaptive(input: StrategyInput): Decision {
  const { params: p, history } = input;
  const w = new HistoryWindows(history);
  if (w.length === 0) return { desired: clampReplicas(0, p), need: 0, mode: 'stable', forecastRps: null };
  const stableNeed = (i: number): number => replicasFor(w.arrivalRate(i, ADAPTIVE.stableWindowSeconds), w.meanQueued(i, ADAPTIVE.stableWindowSeconds), p);
  const panicNeed = (i: number): number => replicasFor(w.arrivalRate(i, ADAPTIVE.panicWindowSeconds), w.meanQueued(i, ADAPTIVE.panicWindowSeconds), p);
  const provisioned = (need: number): number => wholeReplicas(withHeadroom(need, ADAPTIVE.headroomBeta));
  const triggers = (i: number): boolean => {
    const s = w.sample(i);
    const there = s.ready + s.loading;
    const panic = panicNeed(i);
    return there === 0 ? panic > 0 : panic / there >= ADAPTIVE.panicThreshold;
  };

  const last = w.length - 1;
  const now = w.timeOf(last);
  const need = stableNeed(last);
  // Walk back to the start of the panic that holds now, if any: a chain of triggers with no gap longer than
  // the stable window, the latest of them within the stable window of now. Usually this reads one window.
  let chainStart = -1;
  let horizon = now - ADAPTIVE.stableWindowSeconds;
  for (let i = last; i >= 0 && w.timeOf(i) >= horizon; i--) {
    if (!triggers(i)) continue;
    chainStart = i;
    horizon = w.timeOf(i) - ADAPTIVE.stableWindowSeconds;
  }
  if (chainStart < 0) return { desired: clampReplicas(provisioned(need), p), need, mode: 'stable', forecastRps: null };
  let panicMax = 0;
  for (let i = chainStart; i <= last; i++) panicMax = Math.max(panicMax, provisioned(stableNeed(i)), provisioned(panicNeed(i)));
  return { desired: clampReplicas(panicMax, p), need, mode: 'panic', forecastRps: null };
}
