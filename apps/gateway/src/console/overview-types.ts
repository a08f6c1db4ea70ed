/**
 * What `GET /v1/console/overview` answers. Shared by the gateway and the
 * browser console (this file must stay free of Node and DOM types).
 */
export interface ConsoleOverview {
  /** The default model (what a request naming none runs on); `queue` and `autoscaler` are its pool's. */
  model: string;
  /** Server time (ms since the epoch) the figures were read at. */
  time: number;
  queue: {
    /** The default model's pool queue. */
    name: string;
    /** Jobs by BullMQ state: wait, prioritized, delayed, active, failed, completed. */
    counts: Record<string, number>;
    /** Seconds the oldest waiting job has waited. */
    oldest_wait_seconds: number;
  };
  workers: ConsoleWorker[];
  /** This gateway's own chat-completion traffic, cumulative since it started. */
  gateway: {
    completions: number;
    latency: { boundaries: number[]; counts: number[] };
  };
  /** The caller's tenant's most recent jobs, newest first. */
  jobs: ConsoleJob[];
  /** The autoscaler's latest decision for the default model's pool; null when no scaler wrote one in the last 30 s. */
  autoscaler: ConsoleAutoscaler | null;
  /** Every model pool (the default first), with its queue and its autoscaler decision. */
  pools: ConsolePool[];
}

/** One model's pool: its queue and what the autoscaler decided for it. */
export interface ConsolePool {
  model: string;
  /** Other names requests may use for it. */
  aliases: string[];
  /** Configured on the gateway (false: served because its workers announce it). */
  configured: boolean;
  /** Live workers. */
  workers: number;
  /** Its BullMQ queue. */
  queue: string;
  counts: Record<string, number>;
  oldest_wait_seconds: number;
  /** null when no scaler wrote a decision for its queue in the last 30 s. */
  autoscaler: ConsoleAutoscaler | null;
}

/** One tick of the KEDA external scaler, as it recorded it. */
export interface ConsoleAutoscaler {
  /** ms since the epoch. */
  at: number;
  queue: string;
  /** `namespace/name` of the ScaledObject, or `default` (the scaler's own configured watch). */
  scaled_object: string;
  /** The strategy the ScaledObject chose: its desired count is what KEDA gets. */
  strategy: string;
  /** Replicas every strategy would ask for on the same signals, in the scaler's order. */
  desired: { strategy: string; replicas: number }[];
  mode: 'stable' | 'panic';
  /** Forecast arrivals per second over the start-up horizon; null while the predictive model is still learning. */
  forecast_rps: number | null;
  /** Whether the queue counts as active (KEDA keeps at least one replica). */
  active: boolean;
  signals: {
    queued: number;
    active: number;
    ready: number;
    loading: number;
    arrivals_per_second: number;
    /** Jobs per second one replica completes; measured from the workers' `work` totals, or the prior. */
    replica_capacity: number;
    replica_capacity_measured: boolean;
    startup_seconds: number;
    startup_measured: boolean;
  };
}

export interface ConsoleWorker {
  id: string;
  model: string;
  revision: string;
  dtype: string;
  device: string;
  /** ms since the epoch. */
  started_at: number;
}

export interface ConsoleJob {
  id: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** ms since the epoch. */
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  queue_ms: number | null;
  latency_ms: number | null;
  completion_tokens: number | null;
  finish_reason: string | null;
  error_code: string | null;
}
