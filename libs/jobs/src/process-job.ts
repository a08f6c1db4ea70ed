import {
  AppError,
  isAppError,
  isDeterministic,
  isRetryable,
  type InferenceJobData,
  type InferenceResult,
  type SerializedError,
} from '@fastvlm/contracts';
import type { GenerateRequest, GenerateResult, ModelInfo } from '@fastvlm/pipeline';
import type { AnswerCache } from './answer-cache';
import type { ImageStore } from './image-store';
import type { JobStore } from './job-store';

/** The part of the inference engine a worker needs. */
export interface InferenceEngine {
  readonly info: ModelInfo;
  generate(req: GenerateRequest): Promise<GenerateResult>;
}

export interface ProcessDeps {
  store: JobStore;
  images: ImageStore;
  answers: AnswerCache;
  engine: InferenceEngine;
  now: () => number;
}

export interface Attempt {
  /** 0 on the first run. */
  attemptsMade: number;
  /** Total runs allowed for transient failures. */
  maxAttempts: number;
  /** Aborts when the job is cancelled while it runs. */
  signal: AbortSignal;
}

export type ProcessOutcome = 'succeeded' | 'cancelled' | 'already-finished' | 'failed';

/**
 * Where a failure should go: `fatal` errors fail the job for good (bad input
 * that slipped through, cancelled, expired image); `transient` ones are retried
 * by the queue with backoff until attempts run out.
 */
export class JobFailure extends Error {
  constructor(
    readonly kind: 'fatal' | 'transient',
    readonly error: SerializedError,
  ) {
    super(error.message);
    this.name = 'JobFailure';
  }
}

/**
 * Runs one inference job: claims it, streams tokens into its event stream,
 * stores the result exactly once, fills the answer cache.
 */
export async function processInferenceJob(
  deps: ProcessDeps,
  data: InferenceJobData,
  attempt: Attempt,
): Promise<ProcessOutcome> {
  const { store } = deps;
  const startedAt = deps.now();
  // Fetching the image does not depend on the claim; overlapping saves a round trip per job.
  const [claimed, image] = await Promise.all([store.start(data.id, startedAt), deps.images.get(data.image.sha256)]);
  if (!claimed.ok) {
    if (claimed.reason === 'missing') {
      throw new JobFailure('fatal', { code: 'not_found', message: `job ${data.id} has no record (expired?)` });
    }
    return claimed.current === 'cancelled' ? 'cancelled' : 'already-finished';
  }

  try {
    if (data.model !== deps.engine.info.id) {
      throw new AppError('model_not_found', `this worker serves ${deps.engine.info.id}, not ${data.model}`);
    }
    if (!image) {
      throw new AppError('invalid_request', 'the job image expired before a worker took the job; submit it again');
    }
    // Token events are written in order on one connection; collect their
    // promises so that the result is never stored before its last token.
    const writes: Promise<boolean>[] = [];
    const generated = await deps.engine.generate({
      image,
      question: data.question,
      params: data.params,
      signal: attempt.signal,
      ...(data.deadline !== undefined ? { deadline: data.deadline } : {}),
      onToken: (d) => writes.push(store.appendToken(data.id, d.index, d.text)),
    });
    await Promise.all(writes);
    if (generated.finishReason === 'cancelled') return 'cancelled';

    const finishedAt = deps.now();
    const result: InferenceResult = {
      text: generated.text,
      finishReason: generated.finishReason,
      usage: generated.usage,
      model: data.model,
      finishedAt,
      timings: {
        queueMs: Math.max(0, startedAt - data.createdAt),
        inferenceMs: finishedAt - startedAt,
        preprocessMs: round(generated.timings.preprocessMs),
        visionMs: round(generated.timings.visionMs),
        prefillMs: round(generated.timings.prefillMs),
        decodeMs: round(generated.timings.decodeMs),
        // The engine's clock starts when the job reaches it; the caller cares about the whole wait.
        ttftMs: round(generated.timings.ttftMs),
      },
    };
    const cacheable = data.cacheKey !== null && isDeterministic(data.params) && data.modelRevision === deps.engine.info.revision;
    // A deterministic answer is the same whichever run stores it, so the cache write need not wait for the claim check.
    const [stored] = await Promise.all([store.succeed(data.id, result), cacheable && data.cacheKey ? deps.answers.store(data.cacheKey, result) : null]);
    if (!stored.ok) return stored.reason === 'rejected' && stored.current === 'cancelled' ? 'cancelled' : 'already-finished';
    return 'succeeded';
  } catch (e) {
    const failure = toFailure(e);
    const last = attempt.attemptsMade + 1 >= attempt.maxAttempts;
    if (failure.kind === 'fatal' || last) {
      await store.fail(data.id, failure.error, deps.now());
    } else {
      await store.requeue(data.id);
    }
    throw failure;
  }
}

function toFailure(e: unknown): JobFailure {
  if (e instanceof JobFailure) return e;
  if (isAppError(e)) return new JobFailure(isRetryable(e.code) ? 'transient' : 'fatal', e.toJSON());
  const message = e instanceof Error ? e.message : String(e);
  return new JobFailure('transient', { code: 'internal', message });
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
