/**
 * What `GET /v1/console/overview` answers. Shared by the gateway and the
 * browser console (this file must stay free of Node and DOM types).
 */
export interface ConsoleOverview {
  /** The model this cluster serves. */
  model: string;
  /** Server time (ms since the epoch) the figures were read at. */
  time: number;
  queue: {
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
