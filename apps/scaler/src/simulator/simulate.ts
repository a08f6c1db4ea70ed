/**
 * The trace-driven autoscaling simulator: replays arrival times through a
 * queue, pods, KEDA and the HPA, and reports what the jobs waited and what
 * the pods cost.
 *
 * The model:
 *
 * - Time is discrete events with sub-second precision (arrivals, service
 *   completions, pods becoming ready), plus the controllers' ticks at whole
 *   epoch seconds. At each tick every event up to and including it has
 *   happened.
 * - Jobs: one FIFO queue. A ready pod serves one job at a time; service times
 *   are gamma with mean 1/R and coefficient of variation 0.5 (shape 4).
 * - Pods: a scale-up creates pods that are ready after uniform [0.9 S, 1.1 S].
 *   A scale-down removes pods not yet ready (newest first), then idle ready
 *   pods, then busy ones, which take no new job, finish theirs and end.
 *   Replica-minutes integrate every pod that exists (starting, ready or
 *   draining).
 * - Samples: at every whole second t a `Sample` (arrivals and completions as
 *   totals; queued, active, ready and loading as levels). Strategies get the
 *   last `HISTORY_SECONDS` of them, oldest first, and the forecast fitted with
 *   `foldMinute` from every closed minute's arrivals.
 * - KEDA (ScaledObject minReplicaCount 0, maxReplicaCount 100, pollingInterval
 *   30 s, cooldownPeriod 300 s): a strategy is an external-push trigger whose
 *   activity is `isActive` from `@fastvlm/autoscaling`, checked every second;
 *   the baseline (KEDA's Redis list scaler on the waiting list) is polled every
 *   30 s and is active while jobs wait. At 0 replicas an active check sets 1;
 *   above 0, a check more than cooldownPeriod after the last active one sets 0.
 * - HPA (autoscaling/v2, `AverageValue`): a sync every 15 s (epoch multiples)
 *   while replicas ≥ 1, with minReplicas 1. For a strategy the metric is its
 *   decision's `desired` at that instant against a target of 1; for the
 *   baseline, the jobs waiting against `listLength` 5. Tolerance 0.1,
 *   stabilization and rate policies as in `hpa.ts` (Kubernetes' defaults).
 *   Every change of the Deployment's replica count (KEDA or HPA) is one scale
 *   event.
 * - Start: warm, with ceil(first minute's arrival rate / R) ready pods (at
 *   least 1) for every autoscaler alike.
 * - Results: per job, queue wait = service start − arrival (a job still
 *   waiting at the end counts with its wait so far).
 */
import {
  HISTORY_SECONDS,
  emptyForecast,
  foldMinute,
  forecastView,
  isActive,
  type Decision,
  type ForecastState,
  type ScalingParams,
  type Strategy,
  type StrategyInput,
} from '@fastvlm/autoscaling';
import { countInRange, type TraceWindow } from './arrivals';
import { Cluster } from './cluster';
import { DEFAULT_HPA_BEHAVIOR, HPA_SYNC_PERIOD_SECONDS, HorizontalPodAutoscaler, type HpaBehavior } from './hpa';
import { DEFAULT_SCALED_OBJECT, KedaActivation, REDIS_LIST_TRIGGER, hpaMinReplicas, type ScaledObjectSpec } from './keda';
import { SampleRing } from './sample-ring';
import { summariseWaits, type WaitSummary } from './stats';
import { TimelineRecorder, type Timeline } from './timeline';

/** How the Deployment is scaled. */
export type Autoscaler =
  /** One of our strategies behind KEDA's external-push trigger. */
  | { kind: 'strategy'; strategy: Strategy }
  /** KEDA's Redis list scaler on the waiting list (the baseline). */
  | { kind: 'list-length'; listLength: number; activationListLength: number };

/** The baseline: KEDA's Redis list scaler with its defaults. */
export const LIST_LENGTH_BASELINE: Autoscaler = { kind: 'list-length', ...REDIS_LIST_TRIGGER };

export interface SimulateOptions {
  /** Arrival times, epoch seconds, ascending (see `generateArrivals`). */
  arrivals: Float64Array;
  /** The replayed span; ticks run from its start (a whole minute) to its end. */
  window: TraceWindow;
  autoscaler: Autoscaler;
  /** R: jobs per second one replica completes. */
  replicaRps: number;
  /** S: mean pod start-up time, seconds. */
  startupS: number;
  /** The queue-wait SLO, seconds: the strategies' target and the violation threshold. */
  sloS: number;
  /** Seed of the service-time and start-up streams. */
  seed: number;
  /** Default `DEFAULT_SCALED_OBJECT`. */
  scaledObject?: ScaledObjectSpec;
  /** Default `DEFAULT_HPA_BEHAVIOR`. */
  behavior?: HpaBehavior;
  /** Width of the timeline's buckets, seconds; 0 or absent: no timeline. */
  bucketSeconds?: number;
}

/** One change of the Deployment's replica count. */
export interface ScaleChange {
  /** Epoch second. */
  t: number;
  from: number;
  to: number;
  by: 'keda' | 'hpa';
}

export interface SimulationResult extends WaitSummary {
  /** Integral of every pod that existed (starting, ready or draining), minutes. */
  replicaMinutes: number;
  /** Changes of the Deployment's replica count, by KEDA or the HPA. */
  scaleEvents: number;
  /** Ready pods at the start. */
  initialReplicas: number;
  scaleLog: readonly ScaleChange[];
  /** Times the strategy was called (0 for the baseline). */
  strategyCalls: number;
  timeline: Timeline | null;
}

/** The ScalingParams a run hands its strategy. */
export function simulationParams(o: Pick<SimulateOptions, 'replicaRps' | 'startupS' | 'sloS'>, spec: ScaledObjectSpec = DEFAULT_SCALED_OBJECT): ScalingParams {
  return {
    targetQueueWaitSeconds: o.sloS,
    replicaCapacity: o.replicaRps,
    minReplicas: spec.minReplicaCount,
    maxReplicas: spec.maxReplicaCount,
    startupSeconds: o.startupS,
    forecastHorizonSeconds: o.startupS + 30,
    scaleToZeroGraceSeconds: 60,
  };
}

/** Ready pods at the start: what the first minute's arrival rate needs, at least 1. */
export function initialReplicas(arrivals: Float64Array, window: TraceWindow, replicaRps: number, maxReplicas: number): number {
  const rate = countInRange(arrivals, window.startS, window.startS + 60) / 60;
  return Math.min(maxReplicas, Math.max(1, Math.ceil(rate / replicaRps - 1e-9)));
}

/** The decision that adds no activity: `isActive` with it tests only the queue and the recent arrivals. */
const NO_PREWARM: Decision = { desired: 0, need: 0, mode: 'stable', forecastRps: null };

export function simulate(o: SimulateOptions): SimulationResult {
  const spec = o.scaledObject ?? DEFAULT_SCALED_OBJECT;
  const { startS, endS } = o.window;
  if (!Number.isInteger(startS / 60) || !(endS > startS)) throw new RangeError(`the window must start at a whole minute and end after it (${startS}–${endS})`);
  const params = simulationParams(o, spec);
  const initial = initialReplicas(o.arrivals, o.window, o.replicaRps, spec.maxReplicaCount);
  const cluster = new Cluster({ arrivals: o.arrivals, startS, replicaRps: o.replicaRps, startupS: o.startupS, initialReady: initial, seed: o.seed });
  const hpa = new HorizontalPodAutoscaler({ minReplicas: hpaMinReplicas(spec), maxReplicas: spec.maxReplicaCount, behavior: o.behavior ?? DEFAULT_HPA_BEHAVIOR });
  hpa.start(startS, initial);
  const keda = new KedaActivation(spec, startS);
  const ring = new SampleRing(HISTORY_SECONDS);
  const timeline = o.bucketSeconds ? new TimelineRecorder(startS, endS, o.bucketSeconds) : null;
  const scaleLog: ScaleChange[] = [];
  const setReplicas = (to: number, t: number, by: ScaleChange['by']): void => {
    const from = cluster.replicas;
    if (to === from) return;
    scaleLog.push({ t, from, to, by });
    cluster.scaleTo(to, t);
  };

  const strategy = o.autoscaler.kind === 'strategy' ? o.autoscaler.strategy : null;
  let forecastState: ForecastState = emptyForecast();
  const input: StrategyInput = { params, history: [], forecast: null };
  // isActive reads no further back than the grace period; this input holds just that much.
  const probe: StrategyInput = { params, history: [], forecast: null };
  const probeLength = Math.floor(params.scaleToZeroGraceSeconds) + 2;
  let strategyCalls = 0;
  let decision: Decision | null = null;
  const decide = (s: Strategy): Decision => {
    if (decision === null) {
      input.history = ring.all();
      decision = s(input);
      strategyCalls++;
    }
    return decision;
  };

  for (let t = startS; t < endS; t++) {
    cluster.advanceTo(t);
    const sample = ring.record(t, cluster.arrived, cluster.completions, cluster.queued, cluster.active, cluster.ready, cluster.loading);
    timeline?.addSecond(t, cluster.ready, cluster.pods);
    decision = null;

    if (strategy) {
      const minuteAgo = t % 60 === 0 ? ring.at(60) : undefined;
      if (minuteAgo) {
        forecastState = foldMinute(forecastState, t / 60 - 1, sample.arrivals - minuteAgo.arrivals);
        input.forecast = probe.forecast = forecastView(forecastState);
      }
      let active = sample.queued + sample.active > 0;
      if (!active) {
        probe.history = ring.last(probeLength);
        // A decision can only add activity (a pre-warm), so the strategy is called only when the queue alone says idle.
        active = isActive(probe, NO_PREWARM) || isActive(input, decide(strategy));
      }
      const to = keda.check(t, active, cluster.replicas);
      if (to !== null) setReplicas(to, t, 'keda');
    } else if (o.autoscaler.kind === 'list-length' && t % spec.pollingIntervalSeconds === 0) {
      const to = keda.check(t, sample.queued > o.autoscaler.activationListLength, cluster.replicas);
      if (to !== null) setReplicas(to, t, 'keda');
    }

    if (t % HPA_SYNC_PERIOD_SECONDS === 0 && cluster.replicas >= 1) {
      const current = cluster.replicas;
      const to =
        o.autoscaler.kind === 'strategy'
          ? hpa.sync(t, current, decide(o.autoscaler.strategy).desired, 1)
          : hpa.sync(t, current, sample.queued, o.autoscaler.listLength);
      setReplicas(to, t, 'hpa');
    }
  }
  cluster.advanceTo(endS);
  cluster.finish(endS);

  return {
    ...summariseWaits(cluster.waits, o.sloS),
    replicaMinutes: cluster.podSecondsUntil(endS) / 60,
    scaleEvents: scaleLog.length,
    initialReplicas: initial,
    scaleLog,
    strategyCalls,
    timeline: timeline ? timeline.finish(o.arrivals, cluster.waits) : null,
  };
}
