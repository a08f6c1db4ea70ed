import { Controller, Get, HttpException, Inject, Res } from '@nestjs/common';
import { HealthCheckService, HealthIndicatorService, type HealthCheckResult } from '@nestjs/terminus';
import type { FastifyReply } from 'fastify';
import type { ScalerStatus } from './scaler-status';
import { SCALER_STATUS } from './tokens';

/** Readiness gives up on Redis after this long. */
const REDIS_PING_TIMEOUT_MS = 1_000;

/**
 * `/health/live`: the process answers (never touches Redis).
 * `/health/ready`: the gRPC server is bound and Redis answers (without it every call is UNAVAILABLE).
 */
@Controller('health')
export class ScalerHealthController {
  constructor(
    @Inject(HealthCheckService) private readonly health: HealthCheckService,
    @Inject(HealthIndicatorService) private readonly indicators: HealthIndicatorService,
    @Inject(SCALER_STATUS) private readonly status: ScalerStatus,
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
          const s = this.indicators.check('grpc');
          return this.status.grpcServing() ? s.up() : s.down({ message: 'the gRPC server is not serving' });
        },
        async () => {
          const s = this.indicators.check('redis');
          try {
            await withTimeout(this.status.pingRedis(), REDIS_PING_TIMEOUT_MS);
            return s.up();
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
