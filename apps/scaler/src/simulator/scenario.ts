import { STRATEGIES, STRATEGY_NAMES, type StrategyName } from '@fastvlm/autoscaling';
import { autoScale, generateArrivals, traceWindow } from './arrivals';
import { LIST_LENGTH_BASELINE, simulate, type Autoscaler, type SimulationResult } from './simulate';
import { bucketSecondsFor } from './timeline';
import type { Trace } from './trace';

/** The baseline's name: KEDA's Redis list scaler on the waiting list. */
export const BASELINE = 'keda-list-length';
export type ScalerName = StrategyName | typeof BASELINE;
/** Every autoscaler the simulator replays, the baseline first. */
export const SCALER_NAMES: readonly ScalerName[] = [BASELINE, ...STRATEGY_NAMES];

export function isScalerName(name: string): name is ScalerName {
  return (SCALER_NAMES as readonly string[]).includes(name);
}

/** The autoscaler of a name: the strategies come from `@fastvlm/autoscaling`, looked up when asked. */
export function autoscalerFor(name: ScalerName): Autoscaler {
  return name === BASELINE ? LIST_LENGTH_BASELINE : { kind: 'strategy', strategy: STRATEGIES[name] };
}

/** One run's settings, as the CLI takes them. */
export interface Scenario {
  trace: Trace;
  scaler: ScalerName;
  /** Multiplier on the trace's rate; 'auto': the peak minute needs `AUTO_SCALE_PEAK_REPLICAS` replicas. */
  scale: number | 'auto';
  /** R, jobs per second per replica. Default 1. */
  replicaRps: number;
  /** S, mean pod start-up seconds. Default 90. */
  startupS: number;
  /** Queue-wait SLO, seconds. Default 10. */
  sloS: number;
  seed: number;
  /** Record a timeline for a plot. */
  timeline: boolean;
}

export const SCENARIO_DEFAULTS = { replicaRps: 1, startupS: 90, sloS: 10, seed: 1 } as const;

export interface ScenarioResult extends SimulationResult {
  /** The scale factor used (resolved from 'auto'). */
  scale: number;
}

export function runScenario(s: Scenario): ScenarioResult {
  const scale = s.scale === 'auto' ? autoScale(s.trace, s.replicaRps) : s.scale;
  const window = traceWindow(s.trace);
  const arrivals = generateArrivals(s.trace, scale, s.seed);
  const result = simulate({
    arrivals,
    window,
    autoscaler: autoscalerFor(s.scaler),
    replicaRps: s.replicaRps,
    startupS: s.startupS,
    sloS: s.sloS,
    seed: s.seed,
    bucketSeconds: s.timeline ? bucketSecondsFor(window.endS - window.startS) : 0,
  });
  return { ...result, scale };
}
