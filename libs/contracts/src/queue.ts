/** What every pool queue's name starts with; no queue is named this alone (each model has its own). */
const POOL_QUEUE_PREFIX = 'inference';
/**
 * The BullMQ queue of a model pool: the workers that serve `model` consume it.
 * The id is kept readable, with every character outside `[A-Za-z0-9._-]`
 * written as `~` and its UTF-8 bytes in hex (BullMQ refuses `:` in queue names,
 * and ids carry `/` and `@`), so distinct ids never share a queue.
 */
export function poolQueue(model: string): string {
  const safe = [...model].map((c) => (/[A-Za-z0-9._-]/.test(c) ? c : `~${Buffer.from(c, 'utf8').toString('hex')}`)).join('');
  return `${POOL_QUEUE_PREFIX}-${safe}`;
}
/** The only job name on a pool's queue; the worker refuses any other. */
export const INFERENCE_JOB = 'chat';

/** The parts of a queue's autoscaling signals (see `RedisKeys.autoscale`). */
export type AutoscalePart = 'arrivals' | 'completions' | 'work' | 'loading' | 'startup' | 'samples' | 'minutes' | 'forecast' | 'decision';

/**
 * Redis key builders. Every key the product writes outside BullMQ's own goes
 * through here, so that a prefix isolates deployments (and tests) completely.
 *
 * The layout is chosen for Redis Cluster, where a script or transaction may
 * only touch keys of one hash slot, and is the same on every Redis:
 * - `shared` keys carry the tag `{<prefix>}`: BullMQ's queue (its scripts
 *   need one slot) and the control plane that is read and written together
 *   with it or with each other (limits, quotas, API keys, tenant settings,
 *   the worker registry, the pending and recent-job indexes, autoscaling
 *   signals, the audit log). They are a few commands per request.
 * - a job's keys carry the tag `{<job id>}`: its record, event stream, event
 *   channel (sharded pub/sub) and sync-waiter count, which its scripts touch
 *   together. Per-token traffic lands here, so it spreads over the shards.
 * - images, answers, vision features, idempotency records and usage
 *   counters are single keys, untagged: they spread by their own name.
 * Every key starts with `<prefix>:`, so `SCAN MATCH <prefix>:*` finds them all.
 */
export class RedisKeys {
  /** Prefix of the keys that share the control plane's slot (see the class comment). */
  readonly shared: string;

  constructor(readonly prefix: string) {
    this.shared = `${prefix}:{${prefix}}`;
  }

  /** Public job record (hash): tenant, status, timestamps, result or error. */
  job(id: string): string {
    return `${this.prefix}:job:{${id}}`;
  }
  /** Event stream of one job: status changes, tokens, the final result. */
  events(id: string): string {
    return `${this.prefix}:events:{${id}}`;
  }
  /** Sharded pub/sub channel (SPUBLISH) that announces new entries of one job's event stream; in its job's slot. */
  eventsChannel(id: string): string {
    return `${this.prefix}:events-ch:{${id}}`;
  }
  /** Validated image bytes, stored once under their SHA-256. */
  image(sha256: string): string {
    return `${this.prefix}:image:${sha256}`;
  }
  /** Idempotency record: the job created for a tenant's `Idempotency-Key`. */
  idempotency(tenant: string, keyHash: string): string {
    return `${this.prefix}:idem:${tenant}:${keyHash}`;
  }
  /** BullMQ key prefix (BullMQ appends `:<queue>:…`); hash-tagged, as BullMQ requires on a Cluster. */
  bull(): string {
    return `${this.shared}:bull`;
  }
  /** Image features of the vision encoder (cache Redis); `key` names image, model revision and dtype. */
  features(key: string): string {
    return `${this.prefix}:features:${key}`;
  }
  /** Answer cache entry (lives in the cache Redis). */
  answer(cacheKey: string): string {
    return `${this.prefix}:answer:${cacheKey}`;
  }
  /** Sorted set of worker ids scored by their last heartbeat (ms). */
  workers(): string {
    return `${this.shared}:workers`;
  }
  /** Hash describing one worker: model, dtype, device, pid, started time. */
  worker(id: string): string {
    return `${this.shared}:worker:${id}`;
  }
  /** Hash of model id → number of workers that failed to load it (they exit, so they report here). */
  modelLoadFailures(): string {
    return `${this.shared}:model-load-failures`;
  }
  /** Ids of a tenant's most recent jobs, newest first (the console's job list). */
  tenantJobs(tenant: string): string {
    return `${this.shared}:tenant-jobs:${tenant}`;
  }
  /**
   * Sorted set of job ids scored by creation time (ms), from record creation
   * until a worker claims the job or it ends: what the sweeper checks for jobs
   * that never reached the queue.
   */
  pendingJobs(): string {
    return `${this.shared}:pending-jobs`;
  }
  /** Counter of the clients (any gateway) waiting on a sync job's answer; the last one to give up cancels a queued job. In its job's slot. */
  syncWaiters(id: string): string {
    return `${this.prefix}:sync-waiters:{${id}}`;
  }
  /**
   * Autoscaling signals of one BullMQ queue (libs/autoscaling/src/signals owns what each part holds):
   * counters the gateways and workers publish, the workers loading a model, start-up times, and the
   * per-second and per-minute history the scaler records. In the queue's slot: the scaler reads them
   * in one transaction with BullMQ's keys.
   */
  autoscale(queue: string, part: AutoscalePart): string {
    return `${this.shared}:autoscale:${queue}:${part}`;
  }
  /**
   * A tenant's usage in one hour: a hash of `<model>|<class>|<metric>` → integer, keyed by the hour's
   * start in epoch seconds (libs/jobs/src/usage-store.ts owns the fields). Untagged: every write is
   * one MULTI on this key alone, so tenants and hours spread over the shards.
   */
  usage(tenant: string, hourEpochSeconds: number): string {
    return `${this.prefix}:usage:${tenant}:${hourEpochSeconds}`;
  }
  /** Set of the tenants with usage in one hour (how an admin reads every tenant's usage). Untagged, like `usage`. */
  usageTenants(hourEpochSeconds: number): string {
    return `${this.prefix}:usage-tenants:${hourEpochSeconds}`;
  }
  /**
   * A pool's fair queue (libs/jobs/src/fair-queue.ts owns what each part holds): its async and batch
   * jobs waiting by virtual finish tag (`tags:async`, `tags:batch`), the jobs themselves, tenants'
   * counts and last tags, the virtual times, and the leases of claimed jobs. In the queue's slot.
   */
  fair(queue: string, part: string): string {
    return `${this.shared}:fair:${queue}:${part}`;
  }
  /** Hash of one uploaded or generated file's metadata (the bytes live in the file storage). Shared slot: its tenant index and expiry are written with it. */
  file(id: string): string {
    return `${this.shared}:file:${id}`;
  }
  /** Sorted set of a tenant's file ids by creation time (ms): `GET /v1/files`. */
  tenantFiles(tenant: string): string {
    return `${this.shared}:tenant-files:${tenant}`;
  }
  /** Sorted set of every file id by expiry time (ms): what the file sweeper deletes. */
  fileExpiry(): string {
    return `${this.shared}:file-expiry`;
  }
  /**
   * One batch's keys (libs/jobs/src/batch-store.ts owns the parts): its record, the requests in flight,
   * the result lines not yet flushed to the output file. Tagged with the batch id: its scripts touch them together.
   */
  batch(id: string, part = 'record'): string {
    return `${this.prefix}:batch:{${id}}:${part}`;
  }
  /** Sorted set of a tenant's batch ids by creation time (ms): `GET /v1/batches`. */
  tenantBatches(tenant: string): string {
    return `${this.shared}:tenant-batches:${tenant}`;
  }
  /** Set of the batches that still have work (validating, in progress, finalizing, cancelling): what the batch runners lease. */
  activeBatches(): string {
    return `${this.shared}:active-batches`;
  }
  /** Lease of one batch's runner (a gateway): one runner feeds and collects a batch at a time. */
  batchLease(id: string): string {
    return `${this.prefix}:batch-lease:{${id}}`;
  }
  /** Hash of one webhook endpoint (libs/webhooks owns the fields). */
  webhookEndpoint(id: string): string {
    return `${this.shared}:webhook:${id}`;
  }
  /** Set of a tenant's webhook endpoint ids. */
  tenantWebhooks(tenant: string): string {
    return `${this.shared}:tenant-webhooks:${tenant}`;
  }
  /** Capped list of one endpoint's delivery attempts, newest first (the admins' delivery log). */
  webhookDeliveries(endpointId: string): string {
    return `${this.shared}:webhook-deliveries:${endpointId}`;
  }
  /** Sorted set of async job ids whose end must be announced to webhooks, scored by when to look next (ms). */
  watchedJobs(): string {
    return `${this.shared}:watched-jobs`;
  }
  /** Pub/sub channel on which cancellations are broadcast to workers (classic PUBLISH: every worker hears it). */
  cancelChannel(): string {
    return `${this.prefix}:cancel`;
  }
}
