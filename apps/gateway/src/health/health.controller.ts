import { Controller, Get, HttpException, Inject, Res, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisSafetyWatch, type WorkerRegistry } from '@fastvlm/jobs';
import type { GatewayMetrics } from '@fastvlm/observability';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { REDIS, REGISTRY } from '../infra/tokens';
import { METRICS } from '../metrics/tokens';
import { ModelCatalog } from '../models/model-catalog';

/**
 * `/health/live`: the process answers (never touches Redis or the model).
 * `/health/ready`: Redis answers (and was safe, noeviction, at its last
 * periodic check) and at least one worker of the default model is alive
 * (unless READINESS_REQUIRES_WORKER is off: scaled to zero, jobs wait in the
 * queue for the worker the autoscaler starts); false while draining for shutdown.
 * The default model's pool is what a request naming no model reaches; a
 * second pool without workers does not make the gateway unready for the first.
 */
@Controller('health')
export class HealthController implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private draining = false;
  private readonly safety: RedisSafetyWatch;

  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REGISTRY) private readonly registry: WorkerRegistry,
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(ModelCatalog) private readonly catalog: ModelCatalog,
    @Inject(LOGGER) log: Logger,
    @Inject(METRICS) metrics: GatewayMetrics,
  ) {
    // The eviction policy is checked at start (createGateway) and again here, periodically: it can be changed underneath.
    let wasUnsafe = false;
    this.safety = new RedisSafetyWatch(redis, {
      intervalMs: cfg.REDIS_SAFETY_CHECK_INTERVAL_MS,
      onCheck: (problem) => {
        if (problem !== null) log.error({ problem }, 'QUEUE REDIS IS UNSAFE: jobs may be evicted and lost; not ready until it is fixed');
        else if (wasUnsafe) log.info('queue Redis is safe again (noeviction); ready');
        wasUnsafe = problem !== null;
      },
    });
    metrics.observeQueueRedisUnsafe(() => this.safety.problem !== null);
  }

  onApplicationBootstrap(): void {
    this.safety.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.safety.stop();
    this.draining = true;
    // Keep answering (not ready) while load balancers notice.
    if (this.cfg.SHUTDOWN_GRACE_MS > 0) await new Promise((r) => setTimeout(r, this.cfg.SHUTDOWN_GRACE_MS));
  }

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult | object> {
    try {
      return await this.health.check([
        () => {
          const s = this.indicators.check('gateway');
          return this.draining ? s.down({ message: 'draining for shutdown' }) : s.up();
        },
        async () => {
          const s = this.indicators.check('redis');
          try {
            await this.redis.ping();
            const problem = this.safety.problem;
            return problem === null ? s.up() : s.down({ message: problem });
          } catch (e) {
            return s.down({ message: e instanceof Error ? e.message : 'unreachable' });
          }
        },
        async () => {
          const s = this.indicators.check('workers');
          try {
            const model = this.catalog.defaultModel;
            const alive = (await this.registry.alive(Date.now())).filter((w) => w.model === model);
            if (alive.length > 0) return s.up({ count: alive.length, model });
            if (!this.cfg.READINESS_REQUIRES_WORKER) {
              return s.up({ count: 0, model, message: 'no worker running: jobs queue until the autoscaler starts one' });
            }
            return s.down({ message: `no worker with ${model} loaded`, count: 0 });
          } catch (e) {
            return s.down({ message: e instanceof Error ? e.message : 'unknown' });
          }
        },
      ]);
    } catch (e) {
      if (!(e instanceof HttpException)) throw e;
      void reply.code(e.getStatus()).header('retry-after', '5');
      return e.getResponse() as object;
    }
  }
}
