import { randomFillSync } from 'node:crypto';
import { isDeterministic, type DecodingParams, type InferenceJobData, type InferenceResult, type JobStatus, type WorkClass } from '@fastvlm/contracts';
import { SpanKind, inSpan, traceCarrier } from '@fastvlm/observability';
import type { AnswerCache, CacheLevel } from './answer-cache';
import { answerCacheKey } from './cache-key';
import { sha256Hex, type ImageStore } from './image-store';
import type { JobStore } from './job-store';

const ID_BYTES = 16;
/** CSPRNG output drawn once per 256 ids (as Node's randomUUID does): a call per id costs more than the rest of the id. */
const idPool = Buffer.alloc(ID_BYTES * 256);
let idOffset = idPool.length;

/** `n` fresh random bytes' offset in the pool (refilled when used up). */
function take(n: number): number {
  if (idOffset + n > idPool.length) {
    randomFillSync(idPool);
    idOffset = 0;
  }
  const at = idOffset;
  idOffset += n;
  return at;
}

/** Random public job id (128 bits); never BullMQ's counter, so ids reveal nothing and cannot be guessed. */
export function newJobId(): string {
  const at = take(ID_BYTES);
  return `job_${idPool.toString('base64url', at, at + ID_BYTES)}`;
}

/** A random sampling seed (0 … 2^32 - 1) for a job whose request gave none. */
export function newRunSeed(): number {
  return idPool.readUInt32LE(take(4));
}

/** Adds a job to the queue; returns the id of the job that will carry it (another one's when de-duplicated). */
export type Enqueue = (data: InferenceJobData, opts: { deduplicationId?: string }) => Promise<string>;

/** The model the workers serve, as far as the gateway knows; null while no worker has announced one. */
export type ServedModel = () => Promise<{ id: string; revision: string } | null>;

export interface SubmitDeps {
  store: JobStore;
  images: ImageStore;
  answers: AnswerCache;
  enqueue: Enqueue;
  servedModel: ServedModel;
  now: () => number;
}

export interface SubmitInput {
  tenant: string;
  /** Model id the request names (already checked against the served one). */
  model: string;
  /** Image bytes that passed validation. */
  image: Uint8Array;
  question: string;
  params: DecodingParams;
  /**
   * `sync`: the caller waits for this answer, identical requests in flight share one job.
   * `async`: the caller gets a job of its own to poll, stream or cancel.
   */
  mode: 'sync' | 'async';
  /** The job's class of work (absent: interactive). */
  workClass?: WorkClass;
  /** Milliseconds from acceptance after which the worker gives up on the job (`timeout`); none when absent. */
  deadlineMs?: number;
  /** Id to use for a new job (async callers pre-allocate it for idempotency). */
  jobId?: string;
}

/** `createdAt`: when the request was accepted (the job record's creation time, where one was made). */
export type SubmitOutcome =
  | { kind: 'cached'; result: InferenceResult; level: CacheLevel; cacheKey: string; jobId: string | null; createdAt: number }
  | { kind: 'queued'; jobId: string; cacheKey: string | null; deduplicated: boolean; createdAt: number };

/**
 * Admits one inference request: answer from the cache when possible,
 * otherwise store the image and enqueue a job.
 */
export async function submitInference(deps: SubmitDeps, input: SubmitInput): Promise<SubmitOutcome> {
  const imageSha = sha256Hex(input.image);
  const served = await deps.servedModel();
  const cacheable = served !== null && isDeterministic(input.params);
  const cacheKey = cacheable
    ? answerCacheKey({
        tenant: input.tenant,
        modelId: input.model,
        modelRevision: served.revision,
        params: input.params,
        imageSha256: imageSha,
        question: input.question,
      })
    : null;
  const createdAt = deps.now();
  const jobId = input.jobId ?? newJobId();
  const deadline = input.deadlineMs !== undefined ? createdAt + input.deadlineMs : undefined;
  const record = { id: jobId, tenant: input.tenant, model: input.model, createdAt, ...(deadline !== undefined ? { deadline } : {}) };

  if (cacheKey) {
    const hit = await inSpan('cache.lookup', async (span) => {
      const found = await deps.answers.get(cacheKey);
      span.setAttribute('fastvlm.cache.result', found ? `hit-${found.level}` : 'miss');
      return found;
    });
    if (hit) {
      if (input.mode === 'sync') return { kind: 'cached', ...hit, cacheKey, jobId: null, createdAt };
      await deps.store.create(record);
      await deps.store.succeed(jobId, hit.result);
      return { kind: 'cached', ...hit, cacheKey, jobId, createdAt };
    }
  }

  try {
    // Most images were seen before: creating the record refreshes the stored copy,
    // and only a new image costs a second round trip to upload it.
    const { dependencyFound } = await deps.store.createWith(record, deps.images.slot(imageSha));
    if (!dependencyFound) await deps.images.write(input.image, imageSha);
  } catch (e) {
    await deps.store.discard(jobId).catch(() => undefined);
    throw e;
  }
  const data: InferenceJobData = {
    id: jobId,
    tenant: input.tenant,
    model: input.model,
    modelRevision: served?.revision ?? null,
    image: { sha256: imageSha, bytes: input.image.length },
    question: input.question,
    params: input.params,
    cacheKey,
    createdAt,
    ...(deadline !== undefined ? { deadline } : {}),
    ...(input.workClass !== undefined ? { workClass: input.workClass } : {}),
    // A re-run of a sampled request must sample the same tokens (streams never splice two generations).
    ...(input.params.seed === undefined ? { runSeed: newRunSeed() } : {}),
  };
  // The job carries this span's context: the worker's spans become its children.
  // An enqueue that fails keeps the record: the add may have happened with its
  // reply lost, and the sweeper fails the record (`enqueue_lost`) only if no queue job exists.
  const enqueue = (deduplicationId: string | null): Promise<string> =>
    inSpan('queue.enqueue', (span) => {
      span.setAttribute('fastvlm.job.id', jobId);
      const trace = traceCarrier();
      return deps.enqueue(trace ? { ...data, trace } : data, deduplicationId ? { deduplicationId } : {});
    }, { kind: SpanKind.PRODUCER });
  const dedupId = input.mode === 'sync' && cacheKey ? cacheKey : null;
  const carrier = await enqueue(dedupId);
  if (carrier === jobId) return { kind: 'queued', jobId, cacheKey, deduplicated: false, createdAt };
  // An identical request is already in flight: follow its job, unless it ended
  // without an answer (cancelled or failed, its queue job not yet gone), which
  // would hand this request an error it did not cause: run this one on its own.
  if (joinable(await deps.store.status(carrier))) {
    await deps.store.discard(jobId);
    return { kind: 'queued', jobId: carrier, cacheKey, deduplicated: true, createdAt };
  }
  const own = await enqueue(null);
  return { kind: 'queued', jobId: own, cacheKey, deduplicated: false, createdAt };
}

/** Whether a de-duplication carrier in this state will end with an answer (an expired record will not). */
function joinable(status: JobStatus | null): boolean {
  switch (status) {
    case 'queued':
    case 'running':
    case 'succeeded':
      return true;
    case 'failed':
    case 'cancelled':
    case null:
      return false;
  }
}
