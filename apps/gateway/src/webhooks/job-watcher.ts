import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisKeys } from '@fastvlm/contracts';
import { LuaScript } from '@fastvlm/jobs';
import type { WebhookEvents, WebhookEventType } from '@fastvlm/webhooks';
import { LOGGER } from '../http/logger';
import { KEYS, REDIS } from '../infra/tokens';
import { WEBHOOK_EVENTS } from './tokens';

const TICK_MS = 500;
/** Longer than many ticks: a gateway that stops renewing it hands the work over within seconds. */
const LEASE_MS = 5_000;
/** Watched jobs looked at per tick; the rest wait for the next one. */
const BATCH = 500;
/** Job records read at once within a tick. */
const PARALLEL = 50;
/** How soon a just-submitted job is first looked at, in ms. */
const FIRST_LOOK_MS = 1_000;
/** Longest wait between two looks at a running job, in ms. */
const MAX_LOOK_MS = 5_000;
/** After an emit that failed (Redis away), the job is looked at again this much later. */
const RETRY_LOOK_MS = 5_000;

/** Gives the lease up if the caller holds it. KEYS: lease. ARGV: holder. */
const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

const ENDED: Readonly<Record<string, WebhookEventType>> = { succeeded: 'job.succeeded', failed: 'job.failed', cancelled: 'job.cancelled' };

/** Takes or renews the lease. KEYS: lease. ARGV: holder, ttl ms. Reply: 1 held by the caller, 0 by another. */
const LEASE = new LuaScript(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`);

/**
 * Announces the end of async jobs to webhooks. `POST /v1/jobs` adds the job
 * to a sorted set (only for tenants with an endpoint subscribed to job
 * events); one gateway at a time (a short lease) looks at the due ones, emits
 * `job.<status>` for those that ended, with a deterministic event id (a
 * second look after a crash enqueues nothing), and looks again later at
 * those still running, less often as they age. Records that expired are dropped.
 */
@Injectable()
export class JobWatcher implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly holder = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(KEYS) private readonly keys: RedisKeys,
    @Inject(WEBHOOK_EVENTS) private readonly events: WebhookEvents,
    @Inject(LOGGER) private readonly log: Logger,
  ) {}

  /**
   * Watches a job the caller just created (`ended`: it was answered from the cache, so it ended
   * already and is looked at right away). Never throws: the job exists either way, and failing its
   * request would make the client submit it twice; a lost watch is logged.
   */
  async watch(tenant: string, jobId: string, ended: boolean): Promise<void> {
    try {
      if (!(await this.events.subscribes(tenant, 'job.'))) return;
      await this.redis.zadd(this.keys.watchedJobs(), Date.now() + (ended ? 0 : FIRST_LOOK_MS), jobId);
    } catch (e) {
      this.log.warn({ jobId, err: e instanceof Error ? e.message : String(e) }, 'could not watch a job for webhooks: its end will not be announced');
    }
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.ticking;
    // Another gateway takes over at its next tick instead of when the lease lapses (best effort: Redis may be gone).
    await RELEASE.run(this.redis, [this.leaseKey()], [this.holder]).catch(() => undefined);
  }

  private leaseKey(): string {
    return `${this.keys.shared}:watched-jobs-lease`;
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.ticking = this.tick()
        .catch((e: unknown) => this.log.warn({ err: e instanceof Error ? e.message : String(e) }, 'job watcher tick failed; the next one tries again'))
        .finally(() => {
          this.ticking = null;
          this.schedule();
        });
    }, TICK_MS);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    if ((await LEASE.run(this.redis, [this.leaseKey()], [this.holder, LEASE_MS])) !== 1) return;
    const now = Date.now();
    const due = await this.redis.zrangebyscore(this.keys.watchedJobs(), '-inf', now, 'LIMIT', 0, BATCH);
    for (let i = 0; i < due.length && !this.stopped; i += PARALLEL) {
      await Promise.all(due.slice(i, i + PARALLEL).map((id) => this.look(id, now)));
    }
  }

  private async look(id: string, now: number): Promise<void> {
    const watched = this.keys.watchedJobs();
    try {
      const [status, tenant, createdAt, finishedAt] = await this.redis.hmget(this.keys.job(id), 'status', 'tenant', 'created_at', 'finished_at');
      if (!status || !tenant) {
        await this.redis.zrem(watched, id);
        return;
      }
      const type = ENDED[status];
      if (type) {
        const at = Number(finishedAt);
        await this.events.emit({ tenant, type, objectId: id, eventId: `evt_${id}_${status}`, createdAt: Number.isFinite(at) && at > 0 ? at : now });
        await this.redis.zrem(watched, id);
        return;
      }
      // Look about when a tenth of its age has passed again: quick answers for short jobs, few reads for long ones.
      const age = now - Number(createdAt);
      const wait = Math.min(MAX_LOOK_MS, Math.max(FIRST_LOOK_MS, Number.isFinite(age) ? age / 10 : FIRST_LOOK_MS));
      await this.redis.zadd(watched, 'XX', Math.round(now + wait), id);
    } catch (e) {
      this.log.warn({ jobId: id, err: e instanceof Error ? e.message : String(e) }, 'could not announce a job end to webhooks; trying again shortly');
      await this.redis.zadd(watched, 'XX', now + RETRY_LOOK_MS, id).catch(() => undefined);
    }
  }
}
