import { z } from 'zod';

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export function isTerminal(status: JobStatus): boolean {
  return status === 'succeeded' || status === 'failed' || status === 'cancelled';
}

/** Bumped whenever prompt construction changes, so cached answers of the old prompt are not served. */
export const PROMPT_TEMPLATE_VERSION = 1;

/** Upper bound on generated tokens for one request. */
export const MAX_TOKENS_LIMIT = 4096;

/** Decoding parameters, already normalised from the OpenAI body. */
export const DecodingParamsSchema = z.strictObject({
  /** Maximum tokens to generate (OpenAI `max_tokens` / `max_completion_tokens`). */
  maxTokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  /** 0 means greedy decoding. */
  temperature: z.number().min(0).max(2),
  /** Nucleus sampling mass; 1 disables it. */
  topP: z.number().gt(0).max(1),
  /** Seed for sampling; a seeded sampled request is deterministic and cacheable. */
  seed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  /** OpenAI `presence_penalty`: subtracted once from the logit of every token already generated. */
  presencePenalty: z.number().min(-2).max(2).optional(),
  /** OpenAI `frequency_penalty`: subtracted from a token's logit once per earlier occurrence. */
  frequencyPenalty: z.number().min(-2).max(2).optional(),
  /** Up to four stop sequences; the answer ends before the first one found. */
  stop: z.array(z.string().min(1).max(64)).max(4),
});
export type DecodingParams = z.infer<typeof DecodingParamsSchema>;

/** Whether two runs of these parameters produce the same answer (and so may be cached). */
export function isDeterministic(p: DecodingParams): boolean {
  return p.temperature === 0 || p.seed !== undefined;
}

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * Classes of work, most urgent first: `interactive` (sync and streamed chat
 * completions: a person waits), `async` (`POST /v1/jobs`), `batch` (the Batch
 * API, and async jobs that ask for it).
 */
export const WORK_CLASSES = ['interactive', 'async', 'batch'] as const;
export type WorkClass = (typeof WORK_CLASSES)[number];

/**
 * What the gateway puts on the queue. The image travels by reference (its
 * SHA-256; the bytes sit in Redis under that hash with a TTL), never inline.
 */
export const InferenceJobDataSchema = z.strictObject({
  /** Public job id (random); also the BullMQ job id. */
  id: z.string().min(8).max(64),
  tenant: z.string().min(1).max(128),
  model: z.string().min(1),
  /** Model revision the gateway assumed for the cache key; the worker fills the cache only if it serves this revision. */
  modelRevision: z.string().nullable(),
  image: z.strictObject({ sha256: Sha256, bytes: z.number().int().positive() }),
  question: z.string(),
  params: DecodingParamsSchema,
  /** Answer-cache key when the request is deterministic; the worker fills the L2 cache with it. */
  cacheKey: Sha256.nullable(),
  /** Milliseconds since the epoch when the gateway accepted the request. */
  createdAt: z.number().int(),
  /** Epoch milliseconds after which the worker gives up with a `timeout` error. */
  deadline: z.number().int().optional(),
  /**
   * Sampling seed the gateway drew when the request gave none: a re-run after a
   * crash samples the same tokens, so streams never splice two generations.
   * Apart from `params` on purpose: it must not make the request cacheable.
   */
  runSeed: z.number().int().min(0).max(2 ** 32 - 1).optional(),
  /** W3C trace context carriers (`traceparent`, `tracestate`). */
  trace: z.record(z.string(), z.string()).optional(),
  /** The job's class of work (absent on jobs queued before classes existed: read as `interactive`). */
  workClass: z.enum(WORK_CLASSES).optional(),
});
export type InferenceJobData = z.infer<typeof InferenceJobDataSchema>;

export const FINISH_REASONS = ['stop', 'length', 'cancelled'] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export const UsageSchema = z.strictObject({
  promptTokens: z.number().int().min(0),
  completionTokens: z.number().int().min(0),
});
export type Usage = z.infer<typeof UsageSchema>;

export const InferenceResultSchema = z.strictObject({
  text: z.string(),
  finishReason: z.enum(FINISH_REASONS),
  usage: UsageSchema,
  /** Model id as served (e.g. `onnx-community/FastVLM-0.5B-ONNX`). */
  model: z.string(),
  /** Milliseconds since the epoch when the worker finished. */
  finishedAt: z.number().int(),
  timings: z.strictObject({
    /** From acceptance by the gateway to the worker starting the job. */
    queueMs: z.number().min(0),
    /** Model time in the worker, preprocessing included. */
    inferenceMs: z.number().min(0),
    /** Engine breakdown (absent in results written before it existed). */
    preprocessMs: z.number().min(0).optional(),
    visionMs: z.number().min(0).optional(),
    prefillMs: z.number().min(0).optional(),
    decodeMs: z.number().min(0).optional(),
    /** From the worker taking the job to its first token. */
    ttftMs: z.number().min(0).optional(),
    /**
     * Device milliseconds the job was charged: its share of each model run it took part in (a run's
     * wall time divided among the requests batched in it), what usage metering counts as GPU time
     * (the device may be a CPU). Absent in results written before it existed.
     */
    deviceMs: z.number().min(0).optional(),
  }),
});
export type InferenceResult = z.infer<typeof InferenceResultSchema>;
