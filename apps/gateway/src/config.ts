import { z } from 'zod';
import { LogEnvSchema, ModelEnvSchema, ModelRoutingEnvShape, RedisEnvShape, checkModelRouting, checkRedisTopology, envBoolean, parseEnv } from '@fastvlm/contracts';
import { TracingEnvSchema } from '@fastvlm/observability';
import { FilesEnvShape, checkFilesStorage } from '@fastvlm/files';
import { BatchesEnvShape } from './batches/batches-config';
import { parseWindows } from './batches/completion-window';
import { SecurityEnvSchema } from './security/security-config';
import { WebhooksEnvShape } from './webhooks/webhooks-config';

const int = (min: number) => z.coerce.number().int().min(min);

export const GatewayEnvSchema = z.object(RedisEnvShape).extend(ModelEnvSchema.shape)
  .extend(ModelRoutingEnvShape)
  .extend(LogEnvSchema.shape)
  .extend(TracingEnvSchema.shape)
  .extend(SecurityEnvSchema.shape)
  .extend(FilesEnvShape)
  .extend(BatchesEnvShape)
  .extend(WebhooksEnvShape)
  .extend({
    /** HTTP port. */
    PORT: int(0).max(65_535).default(8080),
    /** Address to listen on; containers set 0.0.0.0. */
    HOST: z.string().min(1).default('127.0.0.1'),
    /** Bootstrap API keys for development: comma-separated `tenant:key[:scope+scope]` entries; keys made with `npm run keys` live in Redis. */
    FASTVLM_API_KEYS: z.string().default(''),
    /** Largest request body in bytes (JSON with a base64 image, or multipart). Default 20 MiB. */
    BODY_LIMIT_BYTES: int(1024).default(20 * 1024 * 1024),
    /** Largest decoded image in bytes. Default 15 MiB (a 20 MiB body holds about 15 MiB of base64). */
    MAX_IMAGE_BYTES: int(1).default(15 * 1024 * 1024),
    /** Largest image in pixels (width × height). */
    MAX_IMAGE_PIXELS: int(1).default(25_000_000),
    /** Largest question in bytes (UTF-8). */
    MAX_QUESTION_BYTES: int(1).default(16_384),
    /** Milliseconds a synchronous chat completion waits for its answer before answering 504. */
    SYNC_TIMEOUT_MS: int(1000).default(300_000),
    /** Seconds from acceptance after which a worker gives up on a job with a `timeout` error (queue wait included). */
    JOB_DEADLINE_S: int(1).default(900),
    /** Runs allowed for a job that fails with a transient error. */
    JOB_ATTEMPTS: int(1).default(3),
    /**
     * Async and batch jobs the fair dispatcher keeps waiting in a pool's queue (about twice the pool's slots):
     * the rest wait in the pool's fair queue, where tenants take turns. Default 16.
     */
    FAIR_DISPATCH_TARGET: int(1).max(10_000).default(16),
    /** Milliseconds between two ticks of a pool's fair dispatcher (a new job also wakes it). Default 200. */
    FAIR_DISPATCH_INTERVAL_MS: int(10).max(60_000).default(200),
    /**
     * Classes and fair share (default true). False restores one FIFO queue per pool: every job goes straight
     * to BullMQ without a priority, and async jobs count against the in-flight and queued caps
     * (`npm run bench:fairness` runs both side by side).
     */
    FAIR_QUEUEING: envBoolean.default(true),
    /** An async or batch job waiting this long in a pool's queue is raised to the interactive priority: the starvation bound. Default 10 000. */
    PRIORITY_AGING_MS: int(0).max(3_600_000).default(10_000),
    /** Seconds a finished job's record and events are kept. */
    JOB_TTL_S: int(60).default(86_400),
    /** Seconds an uploaded image is kept for the worker; must outlast the longest queue wait. */
    IMAGE_TTL_S: int(60).default(3_600),
    /** Seconds an Idempotency-Key is remembered. */
    IDEMPOTENCY_TTL_S: int(60).default(86_400),
    /** Seconds an answer lives in the cache Redis. */
    ANSWER_CACHE_TTL_S: int(1).default(3_600),
    /** Bytes of answers kept in this process (L1); 0 disables L1. */
    ANSWER_CACHE_L1_BYTES: int(0).default(32 * 1024 * 1024),
    /**
     * Milliseconds the gateway keeps serving after SIGTERM with readiness false, so that load
     * balancers stop sending before it stops accepting (Kubernetes: a few probe periods). 0 = none.
     */
    SHUTDOWN_GRACE_MS: int(0).default(0),
    /** Folder of the built web console served at /console/ (default: next to the gateway bundle, from `npm run build`). */
    CONSOLE_DIR: z.string().min(1).optional(),
    /** Whether health and request logs include each request (info level). */
    LOG_REQUESTS: envBoolean.default(false),
    /**
     * Milliseconds between `: keep-alive` comments on SSE responses (job events, streamed chat), so that
     * proxies with idle timeouts keep a stream that waits in the queue. Default 15 000.
     */
    SSE_KEEPALIVE_MS: int(10).default(15_000),
    /**
     * Milliseconds an event follower may see nothing before it re-reads the job's stream, in case a
     * pub/sub message was lost; 0 disables this safety net. Default 5 000.
     */
    EVENTS_IDLE_RESYNC_MS: int(0).default(5_000),
    /**
     * Seconds an Idempotency-Key claim stays pending while its request is admitted (a replay meanwhile
     * gets 409 + Retry-After); must outlast the slowest admission (IMAGE_URL_TIMEOUT_MS). Default 30.
     */
    IDEMPOTENCY_PENDING_TTL_S: int(1).default(30),
    /** Milliseconds between re-checks that the queue Redis still uses maxmemory-policy noeviction (readiness is false while it does not). Default 30 s. */
    REDIS_SAFETY_CHECK_INTERVAL_MS: int(100).default(30_000),
    /**
     * Whether `/health/ready` needs a live worker of the default model (FASTVLM_DEFAULT_MODEL). Set false where the autoscaler
     * scales workers to zero (KEDA `minReplicaCount: 0`): the queue holds jobs while no worker runs, and
     * a gateway that went unready at zero workers would refuse the very requests that wake one. Default true.
     */
    READINESS_REQUIRES_WORKER: envBoolean.default(true),
  });

export type GatewayConfig = z.infer<typeof GatewayEnvSchema>;

export function loadGatewayConfig(env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return parseEnv(
    GatewayEnvSchema.superRefine((e, ctx) => {
      checkRedisTopology(e, ctx);
      checkModelRouting(e, ctx);
      checkFilesStorage(e, ctx);
      try {
        parseWindows(e.BATCH_COMPLETION_WINDOWS);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['BATCH_COMPLETION_WINDOWS'], message: (err as Error).message });
      }
    }),
    env,
  );
}

/** Injection token of the validated configuration. */
export const CONFIG = Symbol('GatewayConfig');
