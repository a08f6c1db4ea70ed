import type { ScalingMode, StrategyName } from '../types';

/**
 * What each autoscaling key of a queue holds (`RedisKeys.autoscale(queue, part)`).
 * Writers publish at most once a second per process; nothing is written per token.
 *
 * | part          | type   | written by | content |
 * |---------------|--------|------------|---------|
 * | `arrivals`    | string | gateways   | monotonic count of jobs added to the queue (INCRBY once a second with what arrived since the last flush) |
 * | `completions` | string | workers    | monotonic count of jobs the workers finished, any outcome |
 * | `work`        | hash   | workers    | monotonic totals for measuring capacity: `busyMs` (time with ≥ 1 job running), `busyDone` (jobs finished then), `satMs` (time with every slot taken), `satDone` (jobs finished then) |
 * | `loading`     | zset   | workers    | worker id → last heartbeat (ms) while the process loads its model; removed when it is ready or exits |
 * | `startup`     | list   | workers    | seconds from process start to ready of the most recent workers, newest first (LPUSH + LTRIM to STARTUP_KEEP) |
 * | `samples`     | stream | scalers    | one entry per second, id `<t*1000>-0` (so two scaler replicas write each second once), fields of `RecordedSample`; trimmed to about SAMPLES_KEEP |
 * | `minutes`     | stream | scalers    | one entry per closed minute, id `<minute*60000>-0`, field `arrivals`; trimmed to about MINUTES_KEEP |
 * | `forecast`    | hash   | scalers    | the predictive strategy's fitted model: `minute` (last folded) and `state` (JSON); replaced only by a fold of the next minutes |
 * | `decision`    | string | scalers    | JSON `DecisionRecord` of the latest tick, with a short TTL (the console's cluster view reads it) |
 */
export const SIGNAL_FLUSH_MS = 1_000;
/** A loading worker that has not renewed its entry for this long crashed during its load. */
export const LOADING_STALE_MS = 15_000;
/** Start-up times kept; the measured start-up time is a high percentile of these. */
export const STARTUP_KEEP = 20;
/** Per-second samples kept (a little more than any strategy looks back). */
export const SAMPLES_KEEP = 1_200;
/** Per-minute arrival counts kept: eight days, more than one weekly season. */
export const MINUTES_KEEP = 8 * 24 * 60;
/** Seconds the `decision` record outlives the scaler tick that wrote it. */
export const DECISION_TTL_S = 30;

/** A per-second sample as the scaler stores it: the strategies' `Sample` plus the capacity totals. */
export interface RecordedSample {
  t: number;
  arrivals: number;
  completions: number;
  queued: number;
  active: number;
  ready: number;
  loading: number;
  /** Totals of the `work` hash at that second. */
  busyMs: number;
  busyDone: number;
  satMs: number;
  satDone: number;
}

/** The scaler's latest tick for one ScaledObject, as the console shows it. */
export interface DecisionRecord {
  /** Epoch ms of the tick. */
  at: number;
  queue: string;
  /** `namespace/name` of the ScaledObject, or `default` for the scaler's own configured watch. */
  scaledObject: string;
  /** The strategy the ScaledObject chose: its desired count is what KEDA gets. */
  strategy: StrategyName;
  /** What every strategy would ask for on the same signals (shadow mode). */
  desired: Record<StrategyName, number>;
  /** The adaptive strategy's mode (the predictive one shares it while it falls back). */
  mode: ScalingMode;
  /** Forecast arrivals per second over the horizon; null until the predictive model has a season of history. */
  forecastRps: number | null;
  /** Whether the queue counts as active (KEDA scales from 0 to 1 on it). */
  active: boolean;
  /** The signals of that tick. */
  signals: {
    queued: number;
    active: number;
    ready: number;
    loading: number;
    arrivalsPerSecond: number;
    replicaCapacity: number;
    replicaCapacityMeasured: boolean;
    startupSeconds: number;
    startupMeasured: boolean;
  };
}
