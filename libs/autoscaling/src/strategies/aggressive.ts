import type { Decision, StrategyInput } from '../types';
import { HistoryWindows, clampReplicas, replicasFor, wholeReplicas, withHeadroom } from './demand';

export const AGGRESSIVE = {
  /** The faster of a short and a long arrival-rate window: a burst is seen within seconds. */
  fastWindowSeconds: 6,
  slowWindowSeconds: 60,
  /** Square-root headroom (see `withHeadroom`): twice the others'. */
  headroomBeta: 1,
  /** A backlog is drained within this fraction of the target wait. */
  drainFraction: 0.5,
  /** Scaling up asks for at least this multiple of the replicas there or on their way. */
  upStep: 1.5,
  /** Replicas are held until no higher need has been seen for this long. */
  quietSeconds: 600,
} as const;

/**
 * Clears a backlog fast and pays for it in replicas: it reads the faster of a
 * 6 s and a 60 s arrival rate, drains the backlog within half the target wait,
 * with double headroom; when that is more than the replicas there or on their
 * way, it asks for at least 1.5 times them (large steps). It scales down only
 * once no higher need has been seen for ten quiet minutes.
 */
export function aggressive(input: StrategyInput): Decision {
  const { params: p, history } = input;
  const w = new HistoryWindows(history);
  if (w.length === 0) return { desired: clampReplicas(0, p), need: 0, mode: 'stable', forecastRps: null };
  const last = w.length - 1;
  const now = w.sample(last).t;
  const drainSeconds = p.targetQueueWaitSeconds * AGGRESSIVE.drainFraction;
  const needAt = (i: number): number => {
    const rate = Math.max(w.arrivalRate(i, AGGRESSIVE.fastWindowSeconds), w.arrivalRate(i, AGGRESSIVE.slowWindowSeconds));
    return replicasFor(rate, w.sample(i).queued, p, drainSeconds);
  };
  let desired = 0;
  for (let i = Math.max(0, w.indexAt(now - AGGRESSIVE.quietSeconds)); i <= last; i++) {
    const s = history[i] as (typeof history)[number];
    const there = s.ready + s.loading;
    const wanted = wholeReplicas(withHeadroom(needAt(i), AGGRESSIVE.headroomBeta));
    desired = Math.max(desired, wanted > there ? Math.max(wanted, Math.ceil(there * AGGRESSIVE.upStep)) : wanted);
  }
  return { desired: clampReplicas(desired, p), need: needAt(last), mode: 'stable', forecastRps: null };
}
