import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeys } from '@fastvlm/contracts';
import { cleanupPrefix, JobStore, TEST_REDIS_URL, testPrefix } from '@fastvlm/jobs';
import type { EmitInput, WebhookEvents } from '@fastvlm/webhooks';
import { JobWatcher } from './job-watcher';


async function until<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A strict fake of the producer: records emits; only tenants in `subscribed` have job endpoints. */
class RecordingEvents {
  readonly emitted: EmitInput[] = [];
  constructor(private readonly subscribed: ReadonlySet<string>) {}
  emit(input: EmitInput): Promise<void> {
    this.emitted.push(input);
    return Promise.resolve();
  }
  subscribes(tenant: string, prefix: string): Promise<boolean> {
    if (prefix !== 'job.') throw new Error(`unexpected prefix ${prefix}`);
    return Promise.resolve(this.subscribed.has(tenant));
  }
}

describe('the job watcher', () => {
  const prefix = testPrefix();
  const keys = new RedisKeys(prefix);
  let redis: Redis;
  let store: JobStore;
  let events: RecordingEvents;
  let watcher: JobWatcher | null = null;

  beforeAll(() => {
    redis = new Redis(TEST_REDIS_URL);
    store = new JobStore(redis, keys, 60);
  });
  afterEach(async () => {
    await watcher?.onApplicationShutdown();
    watcher = null;
  });
  afterAll(async () => {
    await cleanupPrefix(redis, prefix);
    redis.disconnect();
  });

  const start = (subscribed: string[]): JobWatcher => {
    events = new RecordingEvents(new Set(subscribed));
    watcher = new JobWatcher(redis, keys, events as unknown as WebhookEvents, pino({ level: 'silent' }));
    return watcher;
  };
  const newJob = async (id: string, tenant = 'acme'): Promise<string> => {
    await store.create({ id, tenant, model: 'tiny-random', createdAt: Date.now() });
    return id;
  };

  it('watches only the jobs of tenants with job endpoints', async () => {
    const w = start(['acme']);
    await w.watch('acme', await newJob('job_watch_acme_000'), false);
    await w.watch('globex', await newJob('job_watch_globex_00', 'globex'), false);
    expect(await redis.zrangebyscore(keys.watchedJobs(), '-inf', '+inf')).toEqual(['job_watch_acme_000']);
    await redis.del(keys.watchedJobs());
  });

  it('announces ended jobs with a deterministic event id, looks again later at running ones, and forgets expired ones', async () => {
    const w = start(['acme']);
    const running = await newJob('job_running_000000');
    const cancelled = await newJob('job_cancelled_0000');
    await w.watch('acme', running, true);
    await w.watch('acme', cancelled, true);
    await w.watch('acme', 'job_expired_0000000', true);
    const cancelledAt = Date.now() - 5;
    await store.cancel(cancelled, cancelledAt);
    w.onApplicationBootstrap();

    await until('the cancelled job to be announced', () => events.emitted.length === 1);
    expect(events.emitted[0]).toEqual({ tenant: 'acme', type: 'job.cancelled', objectId: cancelled, eventId: `evt_${cancelled}_cancelled`, createdAt: cancelledAt });
    await until('the expired id to be dropped', async () => (await redis.zscore(keys.watchedJobs(), 'job_expired_0000000')) === null);
    const next = Number(await until('the running job to be rescheduled', async () => {
      const score = await redis.zscore(keys.watchedJobs(), running);
      return score !== null && Number(score) > Date.now() ? score : undefined;
    }));
    expect(next).toBeGreaterThan(Date.now());

    await redis.hset(keys.job(running), 'status', 'succeeded', 'finished_at', String(Date.now()));
    await until('the succeeded job to be announced', () => events.emitted.length === 2, 15_000);
    expect(events.emitted[1]).toMatchObject({ tenant: 'acme', type: 'job.succeeded', objectId: running, eventId: `evt_${running}_succeeded` });
    await until('the watch list to empty', async () => (await redis.zcard(keys.watchedJobs())) === 0);
  });

  it('holds a lease while it looks, and hands it to another gateway when it stops', async () => {
    const first = start(['acme']);
    first.onApplicationBootstrap();
    await until('the first to take the lease', async () => (await redis.get(`${keys.shared}:watched-jobs-lease`)) !== null);
    const firstEvents = events;
    const second = new JobWatcher(redis, keys, firstEvents as unknown as WebhookEvents, pino({ level: 'silent' }));
    const holder = await redis.get(`${keys.shared}:watched-jobs-lease`);
    second.onApplicationBootstrap();
    await first.onApplicationShutdown();
    watcher = second;
    // The first gives the lease up as it stops (a crashed one would let it lapse), and the second takes it.
    await until('the second to take the lease', async () => {
      const now = await redis.get(`${keys.shared}:watched-jobs-lease`);
      return now !== null && now !== holder;
    });
    const job = await newJob('job_after_handover');
    await second.watch('acme', job, false);
    await store.cancel(job, Date.now());
    await until('the job to be announced by the second', () => firstEvents.emitted.some((e) => e.objectId === job), 15_000);
  });
});
