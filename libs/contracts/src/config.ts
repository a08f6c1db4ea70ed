import { z } from 'zod';

/**
 * Environment fragments shared by every app. Each app composes them into its
 * own schema and parses `process.env` once at start-up.
 */
/** `host:port,host:port,…`: Sentinels or Cluster seed nodes. */
const HostPortList = z
  .string()
  .trim()
  .min(1)
  .transform((v, ctx) => {
    const out: HostPort[] = [];
    for (const part of v.split(',').map((p) => p.trim())) {
      const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(part);
      const port = Number(m?.[2]);
      if (!m || port < 1 || port > 65_535) {
        ctx.addIssue({ code: 'custom', message: `"${part}" is not host:port` });
        return z.NEVER;
      }
      out.push({ host: (m[1] as string).replace(/^\[|\]$/g, ''), port });
    }
    return out;
  });

export interface HostPort {
  host: string;
  port: number;
}

/**
 * Where a Redis lives. `url` always carries the data nodes' credentials, TLS
 * (`rediss:`) and database; for Sentinel and Cluster its host is not used.
 */
export type RedisTarget =
  | { kind: 'standalone'; url: string }
  | { kind: 'sentinel'; url: string; sentinels: HostPort[]; name: string; sentinelPassword?: string }
  | { kind: 'cluster'; url: string; nodes: HostPort[] };

const redisFields = {
  /** Queue Redis (BullMQ, job records, events). Must not evict keys. With Sentinel or Cluster, only its credentials, TLS and database are used. */
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** Sentinels that watch the queue Redis: `host:port,…` (with REDIS_SENTINEL_NAME). */
  REDIS_SENTINELS: HostPortList.optional(),
  /** The Sentinel group (master) name of the queue Redis. */
  REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  /** Password of the Sentinels themselves (the data nodes' is REDIS_URL's). */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** Seed nodes of a Redis Cluster holding the queue data: `host:port,…`. */
  REDIS_CLUSTER_NODES: HostPortList.optional(),
  /** Cache Redis (answers, image features). Defaults to the queue Redis. */
  CACHE_REDIS_URL: z.string().url().optional(),
  CACHE_REDIS_SENTINELS: HostPortList.optional(),
  CACHE_REDIS_SENTINEL_NAME: z.string().min(1).optional(),
  CACHE_REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  CACHE_REDIS_CLUSTER_NODES: HostPortList.optional(),
  /**
   * Milliseconds a read or write of the cache Redis (answers, image features) may take before it
   * counts as a miss or a dropped write: the cache is optional, never a reason to fail or stall. Default 100.
   */
  CACHE_TIMEOUT_MS: z.coerce.number().int().min(1).max(60_000).default(100),
  /**
   * Prefix of every key the product writes, BullMQ's included. No braces: the
   * product places its own hash tags (see RedisKeys) so that Redis Cluster
   * keeps together what must stay together and spreads the rest.
   */
  FASTVLM_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9_.:-]+$/).default('fastvlm'),
};

type RedisFields = z.infer<z.ZodObject<typeof redisFields>>;

function checkTopology(env: RedisFields, ctx: z.RefinementCtx): void {
  for (const p of ['', 'CACHE_'] as const) {
    const sentinels = env[`${p}REDIS_SENTINELS`];
    if (sentinels && env[`${p}REDIS_CLUSTER_NODES`]) {
      ctx.addIssue({ code: 'custom', path: [`${p}REDIS_CLUSTER_NODES`], message: `give either ${p}REDIS_SENTINELS or ${p}REDIS_CLUSTER_NODES, not both` });
    }
    if (sentinels && !env[`${p}REDIS_SENTINEL_NAME`]) {
      ctx.addIssue({ code: 'custom', path: [`${p}REDIS_SENTINEL_NAME`], message: `required with ${p}REDIS_SENTINELS (the name the Sentinels monitor)` });
    }
  }
}

/** The Redis variables every app shares; `redisTargets` turns them into connections. */
export const RedisEnvSchema = z.object(redisFields).superRefine(checkTopology);

/** The Redis fields for schemas that `.extend` them (apply `checkRedisTopology` to the result). */
export const RedisEnvShape = redisFields;
export const checkRedisTopology = checkTopology;

/** The queue Redis and the cache Redis (null: the queue Redis serves the cache too). */
export function redisTargets(env: RedisFields): { queue: RedisTarget; cache: RedisTarget | null } {
  const target = (p: '' | 'CACHE_', url: string): RedisTarget => {
    const sentinels = env[`${p}REDIS_SENTINELS`];
    const nodes = env[`${p}REDIS_CLUSTER_NODES`];
    if (sentinels) {
      const password = env[`${p}REDIS_SENTINEL_PASSWORD`];
      return { kind: 'sentinel', url, sentinels, name: env[`${p}REDIS_SENTINEL_NAME`] ?? '', ...(password ? { sentinelPassword: password } : {}) };
    }
    if (nodes) return { kind: 'cluster', url, nodes };
    return { kind: 'standalone', url };
  };
  const cacheGiven = env.CACHE_REDIS_URL !== undefined || env.CACHE_REDIS_SENTINELS !== undefined || env.CACHE_REDIS_CLUSTER_NODES !== undefined;
  return {
    queue: target('', env.REDIS_URL),
    // The cache's credentials default to the queue's when only its topology is given.
    cache: cacheGiven ? target('CACHE_', env.CACHE_REDIS_URL ?? env.REDIS_URL) : null,
  };
}

export const ModelEnvSchema = z.object({
  /** Hub id (optionally `@revision`), local folder, or `tiny-random`. */
  FASTVLM_MODEL: z.string().min(1).default('onnx-community/FastVLM-0.5B-ONNX'),
  /** Folder where models are cached and `tiny-random` is generated. */
  FASTVLM_CACHE_DIR: z.string().min(1).optional(),
});

/**
 * Which models one gateway routes, by name (what the scaler needs to know too):
 * the pools it serves, the names clients may use for them, and where a request
 * that names none goes. Composed with `ModelEnvSchema`; `modelRouting` turns the
 * parsed values into a table, `checkModelRouting` reports what is inconsistent.
 */
export const ModelRoutingEnvShape = {
  /** Model ids served, comma-separated, each its own pool (`FASTVLM_MODEL` when unset). */
  FASTVLM_MODELS: z.string().optional(),
  /** Other names for served models, `alias=id,…` (as vLLM's `--served-model-name`). */
  FASTVLM_MODEL_ALIASES: z.string().default(''),
  /** The model (id or alias) of a request that names none; the first of the served models when unset. */
  FASTVLM_DEFAULT_MODEL: z.string().trim().min(1).optional(),
};

type ModelRoutingFields = z.infer<z.ZodObject<typeof ModelRoutingEnvShape>> & { FASTVLM_MODEL: string };

/** The configured pools: ids in the order given, aliases to those ids, and the default one. */
export interface ModelRouting {
  /** Configured model ids; the default first. */
  models: string[];
  /** alias → model id, in the order given. */
  aliases: ReadonlyMap<string, string>;
  /** The model id of a request that names none. */
  defaultModel: string;
}

interface RoutingProblem {
  variable: keyof typeof ModelRoutingEnvShape;
  message: string;
}

function planRouting(env: ModelRoutingFields): { routing: ModelRouting; problems: RoutingProblem[] } {
  const problems: RoutingProblem[] = [];
  const listed = env.FASTVLM_MODELS === undefined ? [env.FASTVLM_MODEL] : env.FASTVLM_MODELS.split(',').map((m) => m.trim());
  const models: string[] = [];
  for (const m of listed) {
    if (!m) problems.push({ variable: 'FASTVLM_MODELS', message: 'an empty model id (give ids separated by commas)' });
    else if (models.includes(m)) problems.push({ variable: 'FASTVLM_MODELS', message: `"${m}" is listed twice` });
    else models.push(m);
  }
  const aliases = new Map<string, string>();
  for (const entry of env.FASTVLM_MODEL_ALIASES.split(',').map((e) => e.trim()).filter((e) => e !== '')) {
    const at = entry.indexOf('=');
    const alias = entry.slice(0, at).trim();
    const target = entry.slice(at + 1).trim();
    if (at < 1 || !alias || !target) problems.push({ variable: 'FASTVLM_MODEL_ALIASES', message: `"${entry}" is not alias=model-id` });
    else if (!models.includes(target)) problems.push({ variable: 'FASTVLM_MODEL_ALIASES', message: `"${alias}" names "${target}", which is not a served model (${models.join(', ')})` });
    else if (models.includes(alias)) problems.push({ variable: 'FASTVLM_MODEL_ALIASES', message: `"${alias}" is a model id already; an alias must be another name` });
    else if (aliases.has(alias)) problems.push({ variable: 'FASTVLM_MODEL_ALIASES', message: `"${alias}" is given twice` });
    else aliases.set(alias, target);
  }
  const asked = env.FASTVLM_DEFAULT_MODEL;
  let defaultModel = models[0] ?? env.FASTVLM_MODEL;
  if (asked !== undefined) {
    const id = aliases.get(asked) ?? asked;
    if (models.includes(id)) defaultModel = id;
    else problems.push({ variable: 'FASTVLM_DEFAULT_MODEL', message: `"${asked}" is neither a served model nor an alias of one (${models.join(', ')})` });
  }
  return { routing: { models: [defaultModel, ...models.filter((m) => m !== defaultModel)], aliases, defaultModel }, problems };
}

/** The routing table of validated configuration (`checkModelRouting` passed). */
export function modelRouting(env: ModelRoutingFields): ModelRouting {
  return planRouting(env).routing;
}

/** Refinement for schemas that carry `ModelRoutingEnvShape` and `FASTVLM_MODEL`. */
export function checkModelRouting(env: ModelRoutingFields, ctx: z.RefinementCtx): void {
  for (const p of planRouting(env).problems) ctx.addIssue({ code: 'custom', path: [p.variable], message: p.message });
}

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
