import { Controller, Get, HttpException, Inject, Res, type BeforeApplicationShutdown } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import type { Redis } from 'ioredis';
import type { WorkerRegistry } from '@fastvlm/jobs';
import { CONFIG, type GatewayConfig } from '../config';
import { REDIS, REGISTRY } from '../infra/tokens';

/**
 * `/health/live`: the process answers (never touches Redis or the model).
 * `/health/ready`: Redis answers and at least one worker with the served model
 * is alive; false while draining for shutdown.
 */
@Controller('health')
export class HealthController implements BeforeApplicationShutdown {
  private draining = false;

  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(REGISTRY) private readonly registry: WorkerRegistry,
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
  ) {}

  async beforeApplicationShutdown(): Promise<void> {
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
            return s.up();
          } catch (e) {
            return s.down({ message: e instanceof Error ? e.message : 'unreachable' });
          }
        },
        async () => {
          const s = this.indicators.check('workers');
          try {
            const alive = (await this.registry.alive(Date.now())).filter((w) => w.model === this.cfg.FASTVLM_MODEL);
            return alive.length > 0
              ? s.up({ count: alive.length, model: this.cfg.FASTVLM_MODEL })
              : s.down({ message: `no worker with ${this.cfg.FASTVLM_MODEL} loaded`, count: 0 });
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
