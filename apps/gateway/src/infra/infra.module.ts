import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { RedisKeys, redisTargets } from '@fastvlm/contracts';
import { AnswerCache, EventHub, IdempotencyKeys, ImageStore, JobStore, WorkerRegistry, createRedis } from '@fastvlm/jobs';
import type { GatewayMetrics } from '@fastvlm/observability';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { METRICS } from '../metrics/tokens';
import { Pools } from './pools';
import * as T from './tokens';
import type { Logger } from 'pino';

type C = GatewayConfig;

const sink = (log: Logger) => (err: Error, connection: string) => log.warn({ err: err.message, connection }, 'redis connection error; reconnecting');

/**
 * Redis connections and the adapters built on them. The gateway's command
 * connection fails fast (503) while Redis is away instead of queueing requests
 * in memory; the subscriber reconnects forever.
 */
@Global()
@Module({
  providers: [
    { provide: T.REDIS, inject: [CONFIG, LOGGER], useFactory: (c: C, l: Logger) => createRedis(redisTargets(c).queue, 'producer', 'gateway', sink(l)) },
    {
      // Fail-fast like the command connection: while the cache Redis is away its calls fail at
      // once and read as misses (a queueing connection would hold every request for the timeout).
      provide: T.CACHE_REDIS,
      inject: [CONFIG, T.REDIS, LOGGER],
      useFactory: (c: C, r: Redis, l: Logger) => {
        const cache = redisTargets(c).cache;
        return cache ? createRedis(cache, 'producer', 'gateway-cache', sink(l)) : r;
      },
    },
    { provide: T.SUB_REDIS, inject: [CONFIG, LOGGER], useFactory: (c: C, l: Logger) => createRedis(redisTargets(c).queue, 'subscriber', 'gateway-sub', sink(l)) },
    { provide: T.KEYS, inject: [CONFIG], useFactory: (c: C) => new RedisKeys(c.FASTVLM_REDIS_PREFIX) },
    { provide: T.JOB_STORE, inject: [T.REDIS, T.KEYS, CONFIG], useFactory: (r: Redis, k: RedisKeys, c: C) => new JobStore(r, k, c.JOB_TTL_S) },
    { provide: T.IMAGE_STORE, inject: [T.REDIS, T.KEYS, CONFIG], useFactory: (r: Redis, k: RedisKeys, c: C) => new ImageStore(r, k, c.IMAGE_TTL_S) },
    {
      // The cache is optional: its errors and timeouts are misses, counted in /metrics.
      provide: T.ANSWER_CACHE,
      inject: [T.CACHE_REDIS, T.KEYS, CONFIG, METRICS],
      useFactory: (r: Redis, k: RedisKeys, c: C, m: GatewayMetrics) =>
        new AnswerCache(r, k, {
          l1MaxBytes: c.ANSWER_CACHE_L1_BYTES,
          l2TtlSeconds: c.ANSWER_CACHE_TTL_S,
          timeoutMs: c.CACHE_TIMEOUT_MS,
          onError: (op) => m.cacheError('answer_l2', op),
        }),
    },
    {
      provide: T.EVENT_HUB,
      inject: [T.SUB_REDIS, T.REDIS, T.KEYS, CONFIG],
      useFactory: (s: Redis, r: Redis, k: RedisKeys, c: C) => new EventHub(s, r, k, { idleResyncMs: c.EVENTS_IDLE_RESYNC_MS }),
    },
    {
      provide: T.IDEMPOTENCY,
      inject: [T.REDIS, T.KEYS, CONFIG],
      useFactory: (r: Redis, k: RedisKeys, c: C) => new IdempotencyKeys(r, k, c.IDEMPOTENCY_TTL_S, c.IDEMPOTENCY_PENDING_TTL_S),
    },
    { provide: T.REGISTRY, inject: [T.REDIS, T.KEYS], useFactory: (r: Redis, k: RedisKeys) => new WorkerRegistry(r, k) },
    {
      provide: T.POOLS,
      inject: [T.REDIS, T.KEYS, CONFIG, LOGGER],
      useFactory: (r: Redis, k: RedisKeys, c: C, l: Logger) => new Pools(
          r,
          k,
          { attempts: c.JOB_ATTEMPTS, dispatchTarget: c.FAIR_DISPATCH_TARGET, agingMs: c.PRIORITY_AGING_MS, dispatchIntervalMs: c.FAIR_DISPATCH_INTERVAL_MS },
          l,
        ),
    },
  ],
  exports: [
    T.REDIS, T.CACHE_REDIS, T.SUB_REDIS, T.KEYS, T.JOB_STORE, T.IMAGE_STORE, T.ANSWER_CACHE,
    T.EVENT_HUB, T.IDEMPOTENCY, T.REGISTRY, T.POOLS,
  ],
})
export class InfraModule implements OnApplicationShutdown {
  constructor(
    @Inject(T.REDIS) private readonly redis: Redis,
    @Inject(T.CACHE_REDIS) private readonly cacheRedis: Redis,
    @Inject(T.SUB_REDIS) private readonly sub: Redis,
    @Inject(T.POOLS) private readonly pools: Pools,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    // Before the connection closes: the arrivals of the last second would be lost otherwise (bounded wait).
    await this.pools.close();
    this.sub.disconnect();
    if (this.cacheRedis !== this.redis) this.cacheRedis.disconnect();
    this.redis.disconnect();
  }
}
