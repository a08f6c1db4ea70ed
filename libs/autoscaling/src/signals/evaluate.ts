import { isActive } from '../activity';
import { forecastView } from '../forecast/seasonal-forecast';
import { resolveParams, type Measured, type ScalerSettings } from '../params';
import { HistoryWindows, decideAll } from '../strategies/index';
import type { Decision, ScalingParams, StrategyInput, StrategyName } from '../types';
import { measure } from './measure';
import type { QueueObservation } from './queue-observer';

/** The arrival rate reported beside a decision (metrics, the console) is over this window. */
export const REPORTED_RATE_WINDOW_SECONDS = 60;

/** A ScaledObject's decision on one observation, with what led to it. */
export interface Evaluation {
  settings: ScalerSettings;
  /** The settings with `measured` values resolved. */
  params: ScalingParams;
  measured: Measured;
  /** Every strategy's decision on the same signals (shadow mode). */
  decisions: Record<StrategyName, Decision>;
  /** The decision of the ScaledObject's own strategy: its `desired` is what KEDA gets. */
  decision: Decision;
  /** Whether the queue counts as active (KEDA scales between 0 and 1 on it). */
  active: boolean;
  /** Arrivals per second over the last REPORTED_RATE_WINDOW_SECONDS. */
  arrivalsPerSecond: number;
}

/**
 * Pure: the same settings and observation give the same evaluation, in every
 * scaler replica and in tests that recompute it from the recorded history.
 */
export function evaluate(settings: ScalerSettings, obs: Pick<QueueObservation, 'history' | 'startupSeconds' | 'forecast'>): Evaluation {
  const measured = measure(obs.history, obs.startupSeconds);
  const params = resolveParams(settings, measured);
  const input: StrategyInput = { params, history: obs.history, forecast: obs.forecast ? forecastView(obs.forecast) : null };
  const decisions = decideAll(input);
  const decision = decisions[settings.strategy];
  return {
    settings,
    params,
    measured,
    decisions,
    decision,
    active: isActive(input, decision),
    arrivalsPerSecond: reportedArrivalRate(obs.history),
  };
}

/** Arrivals per second over the last REPORTED_RATE_WINDOW_SECONDS of `history` (0 without a span). */
export function reportedArrivalRate(history: QueueObservation['history']): number {
  const w = new HistoryWindows(history);
  return w.length > 0 ? w.arrivalRate(w.length - 1, REPORTED_RATE_WINDOW_SECONDS) : 0;
}
