import { Controller, Get, HttpException, Inject, Res } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import type { WorkerStatus } from '../telemetry/worker-status';
import { WORKER_STATUS } from './tokens';

/** Readiness gives up on Redis after this long: the worker's connection queues commands while Redis is away. */
const REDIS_PING_TIMEOUT_MS = 1_000;

/**
 * `/health/live`: the process answers (never touches Redis or the model).
 * `/health/ready`: the model is loaded and warmed, the worker is not draining,
 * and Redis answers and was safe (noeviction) at its last periodic check.
 */
@Controller('health')
export class WorkerHealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(WORKER_STATUS) private readonly status: WorkerStatus,
  ) {}

  @Get('live')
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }

  @Get('ready')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthCheckResult | object> {
    try {
      return await this.health.check([
        () => {
          const s = this.indicators.check('model');
          const phase = this.status.phase;
          return phase === 'ready' ? s.up() : s.down({ message: phase === 'loading' ? 'loading and warming the model' : 'draining for shutdown' });
        },
        async () => {
          const s = this.indicators.check('redis');
          const ping = this.status.pingRedis;
          if (!ping) return s.down({ message: 'not connected yet' });
          try {
            await withTimeout(ping(), REDIS_PING_TIMEOUT_MS);
            const problem = this.status.redisProblem;
            return problem === null ? s.up() : s.down({ message: problem });
          } catch (e) {
            return s.down({ message: e instanceof Error ? e.message : 'unreachable' });
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

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
