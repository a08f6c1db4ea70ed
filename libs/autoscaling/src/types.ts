/**
 * The vocabulary shared by the scaler service and its simulator: what is
 * observed each second, the settings a ScaledObject gives, and what a
 * strategy decides. Both feed the same strategy functions with these.
 */

/**
 * One observation of a queue and its workers, taken once a second. Counters
 * are monotonic totals (differences of two samples give rates, so a missed
 * second or a second scaler replica never double-counts); the rest are levels
 * at the moment of the sample.
 */
export interface Sample {
  /** Epoch seconds the sample describes (integer). */
  t: number;
  /** Jobs added to the queue since the counter began (monotonic). */
  arrivals: number;
  /** Jobs the workers finished, whatever the outcome (monotonic). */
  completions: number;
  /** Jobs waiting for a worker: waiting + prioritized + delayed-and-due. */
  queued: number;
  /** Jobs a worker is running. */
  active: number;
  /** Workers taking jobs. */
  ready: number;
  /** Workers started but not yet ready (scheduling done, loading the model): capacity on its way. */
  loading: number;
}

/** Arrivals of one whole minute: the long history the predictive strategy learns seasons from. */
export interface MinuteCount {
  /** Epoch minutes (epoch seconds / 60, integer). */
  minute: number;
  /** Jobs that arrived during that minute. */
  arrivals: number;
}

export const STRATEGY_NAMES = ['conservative', 'aggressive', 'adaptive', 'predictive'] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/**
 * A ScaledObject's settings with every `measured` value already resolved to
 * a number (by the scaler from the workers' signals, by the simulator from
 * its flags). Units are in the names.
 */
export interface ScalingParams {
  /** Longest a job should wait in the queue before a worker takes it. */
  targetQueueWaitSeconds: number;
  /** Jobs per second one ready replica completes when it is kept busy. */
  replicaCapacity: number;
  minReplicas: number;
  maxReplicas: number;
  /** Seconds from asking for a replica until it takes jobs (scheduling, image pull, model load). */
  startupSeconds: number;
  /** Seconds ahead the predictive strategy forecasts arrivals. */
  forecastHorizonSeconds: number;
  /** Seconds of empty backlog and no arrivals before the queue counts as inactive (scale to zero). */
  scaleToZeroGraceSeconds: number;
}

/** What a strategy reads: its settings, the recent per-second samples, and (predictive) the fitted forecast. */
export interface StrategyInput {
  params: ScalingParams;
  /**
   * Samples oldest first, at most one per second; the last one is "now". Seconds may be missing
   * (a scaler restart): windows are measured by `t`, not by count. Strategies look back at most
   * `HISTORY_SECONDS`.
   */
  history: readonly Sample[];
  /** Arrival forecast fitted online from the minute history (predictive only); null before any minute. */
  forecast: ForecastView | null;
}

/** Read-only view of a fitted arrival forecast. */
export interface ForecastView {
  /** Minutes of history the model has seen. */
  readonly minutesSeen: number;
  /** Minutes in one season (the shortest seasonality modelled): before this much history the forecast is not trusted. */
  readonly seasonMinutes: number;
  /** Last epoch minute folded into the model. */
  readonly lastMinute: number;
  /** Forecast arrivals per second during epoch minute `minute` (after `lastMinute`). */
  ratePerSecond(minute: number): number;
}

/** Mode of the adaptive strategy (Knative KPA): stable, or panic while load outruns what is ready. */
export type ScalingMode = 'stable' | 'panic';

/** What a strategy decides, with the figures that led to it (for metrics and the console). */
export interface Decision {
  /** Replicas wanted, clamped to [minReplicas, maxReplicas]. */
  desired: number;
  /** Replicas the current load needs right now, before smoothing and clamping (fractional). */
  need: number;
  mode: ScalingMode;
  /** Forecast arrivals per second over the horizon (predictive, once trusted); null otherwise. */
  forecastRps: number | null;
}

export type Strategy = (input: StrategyInput) => Decision;

/** The longest look-back of any strategy: the scaler keeps this much per-second history. */
export const HISTORY_SECONDS = 900;
