import { z } from 'zod';

const int = (min: number) => z.coerce.number().int().min(min);

/** Files and Batch API settings of the gateway (storage itself: `FilesEnvShape` in @fastvlm/files). */
export const BatchesEnvShape = {
  /** Largest uploaded file in bytes (OpenAI's batch input limit: 200 MB). */
  FILES_MAX_BYTES: int(1).default(200 * 1024 * 1024),
  /** Most lines (requests) in one batch input file (OpenAI's limit: 50 000). */
  FILES_MAX_LINES: int(1).default(50_000),
  /** Seconds an uploaded or generated file is kept when the upload names no `expires_after` (30 days). */
  FILES_DEFAULT_EXPIRY_S: int(3600).default(30 * 86_400),
  /** Milliseconds between two ticks of a gateway's batch runner (validation, feeding, collecting, the file sweeper). */
  BATCH_TICK_MS: int(10).max(60_000).default(500),
  /**
   * Most requests of one batch in flight at once (fed to the queue and not yet recorded): it bounds the images a
   * batch holds in Redis. Default 1 000.
   */
  BATCH_MAX_IN_FLIGHT: int(1).max(50_000).default(1_000),
  /** Requests of a batch kept waiting for a worker at least, so the batch always has work in the fair queue. Default 16. */
  BATCH_MIN_QUEUED: int(1).max(50_000).default(16),
  /**
   * Seconds of work, at the pace the completion window needs, kept waiting for a worker: a short window feeds the
   * queue faster, and the autoscaler sees its backlog. Default 60.
   */
  BATCH_FEED_LOOKAHEAD_S: int(1).max(3600).default(60),
  /**
   * Milliseconds a gateway's hold on a batch lasts without renewal (it renews every tick): how long a batch
   * whose gateway died waits before another one takes it over. Default 15 000.
   */
  BATCH_LEASE_MS: int(1000).max(600_000).default(15_000),
  /** Result lines gathered in Redis before they are written to storage as one segment of the output. Default 1 000. */
  BATCH_SEGMENT_LINES: int(1).max(50_000).default(1_000),
  /** Seconds a finished batch's record is kept. Default 30 days. */
  BATCH_TTL_S: int(60).default(30 * 86_400),
  /**
   * Milliseconds after which a request that a runner claimed but whose job never appeared (the runner died between
   * the two) is submitted again. Must outlast the slowest submission (IMAGE_URL_TIMEOUT_MS). Default 60 000.
   */
  BATCH_RESUBMIT_AFTER_MS: int(100).default(60_000),
  /** Completion windows a batch may ask for: OpenAI's `24h`, and shorter ones as an extension (`<n>h` or `<n>m`). */
  BATCH_COMPLETION_WINDOWS: z.string().default('1h,4h,24h'),
};
