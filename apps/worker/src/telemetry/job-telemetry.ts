import { context } from '@opentelemetry/api';
import type { InferenceJobData } from '@fastvlm/contracts';
import type { InferenceEngine } from '@fastvlm/jobs';
import { SpanKind, contextFromCarrier, inSpan, recordSpan, type WorkerMetrics } from '@fastvlm/observability';
import type { GenerateRequest, GenerateResult } from '@fastvlm/pipeline';
import type { WorkerStatus } from './worker-status';

/**
 * The worker's side of tracing and metrics. Each job runs inside the trace
 * context its data carries (so its spans are children of the gateway's
 * enqueue span, across processes), and its engine is wrapped to time the
 * first token and the tokens after it.
 */
export class WorkerTelemetry {
  private model: { id: string; dtype: string } | null = null;
  private running = 0;

  constructor(
    readonly metrics: WorkerMetrics,
    readonly status: WorkerStatus,
  ) {
    metrics.observeQueueRedisUnsafe(() => status.redisProblem !== null);
  }

  /** Model loaded and warmed, Redis connected: readiness may turn true. */
  ready(model: string, dtype: string, pingRedis: () => Promise<unknown>): void {
    this.status.pingRedis = pingRedis;
    this.status.phase = 'ready';
    this.model = { id: model, dtype };
    this.metrics.setModel(model, dtype, true);
  }

  /** SIGTERM: readiness turns false while active jobs finish. */
  draining(): void {
    this.status.phase = 'draining';
    if (this.model) this.metrics.setModel(this.model.id, this.model.dtype, false);
  }

  /** Jobs inside `runJob` now (what a shutdown that times out abandons). */
  get activeJobs(): number {
    return this.running;
  }

  /** The latest periodic check of the queue Redis: the problem found, or null when it is safe. */
  redisSafety(problem: string | null): void {
    this.status.redisProblem = problem;
  }

  /** A job failed for good (fatal, or its last attempt). */
  jobFailed(reason: string): void {
    this.metrics.jobFailed(reason);
  }

  /**
   * Runs `fn` in the trace context a job's (not yet validated) data carries,
   * so that every log line about the job has its trace and request ids.
   */
  inJob<T>(rawData: unknown, fn: () => Promise<T>): Promise<T> {
    return context.with(contextFromCarrier(carrierOf(rawData)), fn);
  }

  /**
   * Runs one attempt of a job: a `queue.wait` span from acceptance to now, and
   * a `worker.batch` span around `run`, which gets an engine that measures.
   */
  async runJob<T>(data: InferenceJobData, engine: InferenceEngine, run: (engine: InferenceEngine) => Promise<T>): Promise<T> {
    const parent = contextFromCarrier(data.trace);
    const startedAt = Date.now();
    const job = { 'fastvlm.job.id': data.id };
    recordSpan('queue.wait', data.createdAt, startedAt, job, parent);
    this.metrics.jobStarted((startedAt - data.createdAt) / 1000);
    this.running += 1;
    let generated: GenerateResult | null = null;
    try {
      return await context.with(parent, () =>
        inSpan(
          'worker.batch',
          async (span) => {
            const outcome = await run(this.measured(engine, data, (r) => (generated = r)));
            span.setAttribute('fastvlm.job.outcome', String(outcome));
            const g: GenerateResult | null = generated;
            if (outcome === 'succeeded' && g) this.metrics.succeeded(g.finishReason, (Date.now() - data.createdAt) / 1000, g.usage);
            return outcome;
          },
          // A batch of one job for now; the engine batches decoder steps across jobs (fastvlm_batch_size).
          { kind: SpanKind.CONSUMER, attributes: { ...job, 'fastvlm.batch.size': 1, 'fastvlm.model': engine.info.id } },
        ),
      );
    } finally {
      this.running -= 1;
      this.metrics.jobEnded();
    }
  }

  /** The engine, timing this job's first token and the ones after it, and tracing its phases. */
  private measured(engine: InferenceEngine, data: InferenceJobData, done: (r: GenerateResult) => void): InferenceEngine {
    const metrics = this.metrics;
    return {
      info: engine.info,
      async generate(req: GenerateRequest): Promise<GenerateResult> {
        const calledAt = Date.now();
        let firstAt: number | null = null;
        let lastAt = 0;
        let callbacks = 0;
        const result = await engine.generate({
          ...req,
          onToken: (d) => {
            const now = Date.now();
            if (firstAt === null) {
              firstAt = now;
              metrics.firstToken((now - data.createdAt) / 1000);
            }
            lastAt = now;
            callbacks += 1;
            req.onToken?.(d);
          },
        });
        const endAt = Date.now();
        const tokens = result.usage.completionTokens;
        if (tokens >= 2) {
          // The engine's decode time when it reports one; otherwise the token callbacks' spread.
          const decodeMs = result.timings.decodeMs > 0 ? result.timings.decodeMs : callbacks >= 2 ? lastAt - (firstAt ?? lastAt) : 0;
          if (decodeMs > 0) metrics.meanTokenInterval(decodeMs / 1000 / (tokens - 1));
        }
        engineSpans(result, calledAt, firstAt ?? endAt, endAt);
        done(result);
        return result;
      },
    };
  }
}

/**
 * Spans for the engine's phases, laid out from the durations it reports: the
 * prefill ends at the first token, vision and preprocessing precede it, and
 * decoding runs from the first token to the end. (The engine batches several
 * jobs, so its phases are measured inside it and drawn here per job.)
 */
function engineSpans(r: GenerateResult, calledAt: number, firstAt: number, endAt: number): void {
  const t = r.timings;
  const prefillStart = firstAt - t.prefillMs;
  const visionStart = prefillStart - t.visionMs;
  const preprocessStart = Math.max(calledAt, visionStart - t.preprocessMs);
  if (t.preprocessMs > 0) recordSpan('engine.preprocess', preprocessStart, visionStart);
  if (t.visionMs > 0) recordSpan('engine.vision_encoder', visionStart, prefillStart);
  recordSpan('engine.prefill', prefillStart, firstAt, { 'fastvlm.prompt_tokens': r.usage.promptTokens });
  recordSpan('engine.decode', firstAt, endAt, { 'fastvlm.completion_tokens': r.usage.completionTokens, 'fastvlm.finish_reason': r.finishReason });
}

/** The `trace` field of job data, if it is a map of strings. */
function carrierOf(data: unknown): Record<string, string> | undefined {
  if (typeof data !== 'object' || data === null || !('trace' in data)) return undefined;
  const trace: unknown = data.trace;
  if (typeof trace !== 'object' || trace === null) return undefined;
  const carrier: Record<string, string> = {};
  for (const [k, v] of Object.entries(trace as Record<string, unknown>)) {
    if (typeof v !== 'string') return undefined;
    carrier[k] = v;
  }
  return carrier;
}
