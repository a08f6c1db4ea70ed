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
import { isConnectionError } from './redis';
import type { UsageEntry } from './usage-store';

/** The part of the inference engine a worker needs. */
export interface InferenceEngine {
  readonly info: ModelInfo;
  generate(req: GenerateRequest): Promise<GenerateResult>;
}

/** Where a finished job's usage goes (the worker's `UsageStore`). */
export interface UsageRecorder {
  record(entry: UsageEntry): Promise<void>;
}

export interface ProcessDeps {
  store: JobStore;
  images: ImageStore;
  answers: AnswerCache;
  engine: InferenceEngine;
  now: () => number;
  /** Usage metering; absent: nothing is metered. */
  usage?: UsageRecorder | undefined;
  /** A usage write that failed: the job's usage is lost (the job itself is not affected). */
  onUsageLost?: ((entry: UsageEntry, err: unknown) => void) | undefined;
}

export interface Attempt {
  /** 0 on the first run. */
  attemptsMade: number;
  /** Total runs allowed for transient failures. */
  maxAttempts: number;
  /** Aborts when the job is cancelled while it runs. */
  signal: AbortSignal;
  /**
   * The queue's count of claims of this job including this one (BullMQ's
   * `attemptsStarted`): the run's fence, so that a run that lost its claim can
   * neither take the job back nor write it. Absent: the next attempt number.
   */
  claim?: number;
}

export type ProcessOutcome = 'succeeded' | 'cancelled' | 'already-finished' | 'failed';

/**
 * Where a failure should go: `fatal` errors fail the job for good (bad input
 * that slipped through, cancelled, expired image); `transient` ones are retried
 * by the queue with backoff until attempts run out. The message starts with the
 * code, so that the queue's failed reason still says it when the record could
 * not be written (the reconciler reads it back: see `failureFromReason`).
 */
export class JobFailure extends Error {
  constructor(
    readonly kind: 'fatal' | 'transient',
    readonly error: SerializedError,
  ) {
    super(`${error.code}: ${error.message}`);
    this.name = 'JobFailure';
  }
}

/** Why a run stopped writing before its engine finished. */
type Interrupted = { kind: 'write-failed'; error: unknown } | { kind: 'claim-lost' };

/**
 * Runs one inference job: claims it, streams tokens into its event stream,
 * stores the result exactly once, then fills the answer cache. Usage is
 * metered by the run whose transition ended the job (succeeded, failed), or
 * that held the job when it was cancelled: once per job, after the record
 * changed, so a crash in between loses it rather than counting it twice. Any failure
 * after the claim ends the run's hold on the job (failed, or queued again for
 * a retry); when even that write fails, the queue's failure of the job is
 * reconciled to the record (`JobReconciler`), and the record's TTL ends it at worst.
 */
export async function processInferenceJob(
  deps: ProcessDeps,
  data: InferenceJobData,
  attempt: Attempt,
): Promise<ProcessOutcome> {
  const { store } = deps;
  const startedAt = deps.now();
  /** This run's fence, once it holds the job. */
  let run: number | null = null;
  /** Device time charged to this run so far: reported as each model run ends, so a failed generation has it too. */
  let deviceMs = 0;
  /** Whether the engine took the job (its image was used). */
  let engineRan = false;
  const meter = async (outcome: UsageEntry['outcome'], usage: { promptTokens: number; completionTokens: number }): Promise<void> => {
    if (!deps.usage) return;
    const entry: UsageEntry = {
      tenant: data.tenant,
      model: data.model,
      workClass: data.workClass ?? 'interactive',
      outcome,
      at: deps.now(),
      deviceMs: roundDevice(deviceMs),
      promptTokens: usage.promptTokens,
      completionTokens: usage.completionTokens,
      images: engineRan ? 1 : 0,
    };
    // The job's own outcome stands whatever happens to its usage.
    await deps.usage.record(entry).catch((e: unknown) => deps.onUsageLost?.(entry, e));
  };
  /**
   * A cancelled job is metered by the run that held it when the cancel landed (the record's attempt
   * is this run's fence): no other run can hold that fence, and no run starts a cancelled job.
   */
  const meterCancelled = async (fence: number, g: GenerateResult): Promise<'cancelled'> => {
    const rec = await store.get(data.id).catch(() => null);
    if (rec?.status === 'cancelled' && rec.attempt === fence) await meter('cancelled', g.usage);
    return 'cancelled';
  };
  try {
    // Fetching the image does not depend on the claim; overlapping saves a round trip per job.
    const [claimed, image] = await Promise.allSettled([store.start(data.id, startedAt, attempt.claim), deps.images.get(data.image.sha256)]);
    if (claimed.status === 'rejected') throw claimed.reason;
    const claim = claimed.value;
    if (!claim.ok) {
      if (claim.reason === 'missing') {
        throw new JobFailure('fatal', { code: 'not_found', message: `job ${data.id} has no record (expired?)` });
      }
      return claim.current === 'cancelled' ? 'cancelled' : 'already-finished';
    }
    run = claim.attempt;
    if (image.status === 'rejected') throw image.reason;
    if (data.model !== deps.engine.info.id) {
      throw new AppError('model_not_found', `this worker serves ${deps.engine.info.id}, not ${data.model}`);
    }
    if (!image.value) {
      throw new AppError('invalid_request', 'the job image expired before a worker took the job; submit it again');
    }
    const fence = run;
    // The sequence stops at the first token write that fails or is refused;
    // the other sequences of the engine's batch go on.
    const stop = new AbortController();
    let interrupted: Interrupted | null = null;
    const interrupt = (why: Interrupted): void => {
      if (interrupted) return;
      interrupted = why;
      stop.abort();
    };
    // Token events are written in order on one connection; collect their
    // promises so that the result is never stored before its last token.
    // Each one settles without rejecting: its error is handled here, at once.
    const writes: Promise<void>[] = [];
    engineRan = true;
    const generated = await deps.engine.generate({
      image: image.value,
      question: data.question,
      // A re-run samples what the first run sampled: the seed the gateway drew, when the request gave none.
      params: data.params.seed === undefined && data.runSeed !== undefined ? { ...data.params, seed: data.runSeed } : data.params,
      signal: AbortSignal.any([attempt.signal, stop.signal]),
      ...(data.deadline !== undefined ? { deadline: data.deadline } : {}),
      onDeviceTime: (ms) => {
        deviceMs += ms;
      },
      onToken: (d) => {
        if (stop.signal.aborted) return;
        writes.push(
          store.appendToken(data.id, d.index, d.text, fence).then(
            (ok) => (ok ? undefined : interrupt({ kind: 'claim-lost' })),
            (e: unknown) => interrupt({ kind: 'write-failed', error: e }),
          ),
        );
      },
    });
    await Promise.all(writes);
    const why = interrupted as Interrupted | null;
    if (why?.kind === 'write-failed') {
      const message = why.error instanceof Error ? why.error.message : String(why.error);
      throw new JobFailure('transient', { code: 'service_unavailable', message: `a token write was refused: ${message}` });
    }
    if (why?.kind === 'claim-lost') {
      // Cancelled (a cancel this run did not hear of) or taken over by another run.
      return (await store.status(data.id)) === 'cancelled' ? meterCancelled(fence, generated) : 'already-finished';
    }
    if (generated.finishReason === 'cancelled') return meterCancelled(fence, generated);

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
        // What the engine reported as it went: the same sum as generated.timings.deviceMs.
        deviceMs: roundDevice(deviceMs),
      },
    };
    const stored = await store.succeed(data.id, result, fence);
    if (!stored.ok) return stored.reason !== 'missing' && stored.current === 'cancelled' ? meterCancelled(fence, generated) : 'already-finished';
    await meter('succeeded', generated.usage);
    const cacheable = data.cacheKey !== null && isDeterministic(data.params) && data.modelRevision === deps.engine.info.revision;
    // The result is stored: the cache is optional, and a slow or failing one must not hold the job.
    if (cacheable && data.cacheKey) void deps.answers.store(data.cacheKey, result).catch(() => undefined);
    return 'succeeded';
  } catch (e) {
    const failure = toFailure(e);
    const last = attempt.attemptsMade + 1 >= attempt.maxAttempts;
    // Without a claim there is nothing this run may write: the queue retries or fails the job, and the reconciler ends the record.
    if (run !== null) {
      const final = failure.kind === 'fatal' || last;
      const write = final ? store.fail(data.id, failure.error, deps.now(), run) : store.requeue(data.id, run);
      // A failure write that fails leaves the record to the queue: its failure is reconciled, its retry claims the job anew.
      const moved = await write.catch(() => null);
      // A failed job has no answer: its device time is metered, not tokens. A run that is retried is not
      // metered at all (the retry is the service's doing, not the tenant's).
      if (final && moved?.ok) await meter('failed', { promptTokens: 0, completionTokens: 0 });
    }
    throw failure;
  }
}

function toFailure(e: unknown): JobFailure {
  if (e instanceof JobFailure) return e;
  if (isAppError(e)) return new JobFailure(isRetryable(e.code) ? 'transient' : 'fatal', e.toJSON());
  const message = e instanceof Error ? e.message : String(e);
  // Redis away or refusing writes at maxmemory: the service is unavailable, not broken.
  const unavailable = isConnectionError(e) || message.startsWith('OOM ');
  return new JobFailure('transient', { code: unavailable ? 'service_unavailable' : 'internal', message });
}

const round = (ms: number): number => Math.round(ms * 10) / 10;
/** Device time to the microsecond: what the usage counters hold, so that results and usage sums agree exactly. */
const roundDevice = (ms: number): number => Math.round(ms * 1000) / 1000;
