import { z } from 'zod';

/**
 * Environment fragments shared by every app. Each app composes them into its
 * own schema and parses `process.env` once at start-up.
 */
export const RedisEnvSchema = z.object({
  /** Queue Redis (BullMQ, job records, events). Must not evict keys. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Cache Redis (answers). Defaults to the queue Redis. */
  CACHE_REDIS_URL: z.string().url().optional(),
  /**
   * Milliseconds a read or write of the cache Redis (answers, image features) may take before it
   * counts as a miss or a dropped write: the cache is optional, never a reason to fail or stall. Default 100.
   */
  CACHE_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(100),
  /** Prefix of every key the product writes, BullMQ's included. */
  FASTVLM_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]+$/).default('fastvlm'),
});

export const ModelEnvSchema = z.object({
  /** Hub id (optionally `@revision`), local folder, or `tiny-random`. */
  FASTVLM_MODEL: z.string().min(1).default('onnx-community/FastVLM-0.5B-ONNX'),
  /** Folder where models are cached and `tiny-random` is generated. */
  FASTVLM_CACHE_DIR: z.string().min(1).optional(),
});

export const LogEnvSchema = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** Parses `env` with `schema`, or throws one readable message naming every bad variable. */
export function parseEnv<T extends z.ZodType>(schema: T, env: NodeJS.ProcessEnv): z.infer<T> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

/** Boolean environment flag: `1`, `true`, `yes` are true; `0`, `false`, `no`, empty are false. */
export const envBoolean = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
