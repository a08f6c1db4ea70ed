import { Global, Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { redisTargets, type RedisKeys } from '@fastvlm/contracts';
import { createRedis } from '@fastvlm/jobs';
import type { GatewayMetrics } from '@fastvlm/observability';
import {
  DeliveryLog,
  EndpointCircuit,
  EndpointStore,
  WebhookDelivery,
  WebhookEvents,
  createWebhookQueue,
  webhookAddressPolicy,
  type DeliveryJobData,
} from '@fastvlm/webhooks';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { METRICS } from '../metrics/tokens';
import { KEYS, REDIS } from '../infra/tokens';
import { AdminWebhooksController } from './admin-webhooks.controller';
import { JobWatcher } from './job-watcher';
import * as W from './tokens';
import { WebhookAdmin } from './webhook-admin.service';
import { circuitPolicy, retryPolicy, urlPolicy } from './webhooks-config';

type C = GatewayConfig;

/** A probe holds the endpoint's other deliveries back this much longer than an attempt may take. */
const PROBE_SLACK_MS = 5_000;

/**
 * Webhooks: the admin API, the `WebhookEvents` producer (global: the job
 * watcher and the batch runner emit through it), the job watcher, and the
 * delivery worker, which runs in every gateway on a connection of its own
 * that waits for Redis (a worker must not fail its deliveries during a blip).
 */
@Global()
@Module({
  controllers: [AdminWebhooksController],
  providers: [
    { provide: W.WEBHOOK_ENDPOINTS, inject: [REDIS, KEYS], useFactory: (r: Redis, k: RedisKeys) => new EndpointStore(r, k) },
    { provide: W.WEBHOOK_DELIVERY_LOG, inject: [REDIS, KEYS, CONFIG], useFactory: (r: Redis, k: RedisKeys, c: C) => new DeliveryLog(r, k, c.WEBHOOK_LOG_ENTRIES) },
    {
      provide: W.WEBHOOK_QUEUE,
      inject: [REDIS, KEYS, LOGGER],
      useFactory: (r: Redis, k: RedisKeys, l: Logger) => {
        const q = createWebhookQueue(r, k);
        q.on('error', (err) => l.warn({ err: err.message }, 'webhook queue connection error'));
        return q;
      },
    },
    {
      provide: W.WEBHOOK_EVENTS,
      inject: [W.WEBHOOK_QUEUE, W.WEBHOOK_ENDPOINTS, CONFIG],
      useFactory: (q: Queue<DeliveryJobData>, s: EndpointStore, c: C) => new WebhookEvents(q, s, { retry: retryPolicy(c) }),
    },
    { provide: W.WEBHOOK_ADDRESS_POLICY, inject: [CONFIG], useFactory: (c: C) => webhookAddressPolicy(urlPolicy(c)) },
    {
      provide: W.WEBHOOK_REDIS,
      inject: [CONFIG, LOGGER],
      useFactory: (c: C, l: Logger) =>
        createRedis(redisTargets(c).queue, 'consumer', 'gateway-webhooks', (err, connection) => l.warn({ err: err.message, connection }, 'redis connection error; reconnecting')),
    },
    {
      provide: W.WEBHOOK_DELIVERY,
      inject: [W.WEBHOOK_REDIS, KEYS, CONFIG, W.WEBHOOK_ADDRESS_POLICY, LOGGER, METRICS],
      useFactory: (r: Redis, k: RedisKeys, c: C, allowed: (ip: string) => boolean, l: Logger, m: GatewayMetrics) =>
        new WebhookDelivery(
          r,
          k,
          new EndpointCircuit(r, k, circuitPolicy(c), c.WEBHOOK_TIMEOUT_MS + PROBE_SLACK_MS),
          new DeliveryLog(r, k, c.WEBHOOK_LOG_ENTRIES),
          { concurrency: c.WEBHOOK_CONCURRENCY, timeoutMs: c.WEBHOOK_TIMEOUT_MS, retry: retryPolicy(c), isAllowedAddress: allowed, onAttempt: (s) => m.webhookDelivery(s) },
          l,
        ),
    },
    WebhookAdmin,
    JobWatcher,
  ],
  exports: [W.WEBHOOK_EVENTS, JobWatcher],
})
export class WebhooksModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(
    @Inject(CONFIG) private readonly cfg: C,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(W.WEBHOOK_DELIVERY) private readonly delivery: WebhookDelivery,
    @Inject(W.WEBHOOK_QUEUE) private readonly queue: Queue<DeliveryJobData>,
    @Inject(W.WEBHOOK_REDIS) private readonly redis: Redis,
  ) {}

  onApplicationBootstrap(): void {
    if (this.cfg.WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS) {
      this.log.warn('WEBHOOK_ALLOW_LOOPBACK_FOR_TESTS is on: webhooks may target loopback addresses. This setting is for tests only; never set it in a deployment.');
    }
    this.delivery.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.delivery.close();
    await this.queue.close().catch(() => undefined);
    this.redis.disconnect();
  }
}
