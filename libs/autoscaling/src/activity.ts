import type { Decision, StrategyInput } from './types';

/**
 * Whether the queue is active: KEDA keeps at least one replica while it is and
 * scales to zero once it has not been for its cooldown. Active while jobs wait
 * or run, while any arrived within the grace period, and while the decision
 * (a predictive pre-warm) wants replicas. Only what the history shows counts:
 * a scaler that just started on an idle queue does not wake it.
 */
export function isActive(input: StrategyInput, decision: Decision): boolean {
  const last = input.history.at(-1);
  if (!last) return false;
  if (last.queued + last.active > 0) return true;
  // A pre-warm: the forecast expects at least one job within the horizon.
  if (decision.forecastRps !== null && decision.forecastRps * input.params.forecastHorizonSeconds >= 1) return true;
  const since = last.t - input.params.scaleToZeroGraceSeconds;
  for (let i = input.history.length - 2; i >= 0; i--) {
    const s = input.history[i];
    if (!s) break;
    if (s.arrivals !== last.arrivals) return true;
    if (s.t <= since) break;
  }
  return false;
}
