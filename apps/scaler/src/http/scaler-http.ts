import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { TerminusModule } from '@nestjs/terminus';
import type { ScalerMetrics } from '@fastvlm/observability';
import { ScalerHealthController } from './health.controller';
import { ScalerMetricsController } from './metrics.controller';
import type { ScalerStatus } from './scaler-status';
import { SCALER_METRICS, SCALER_STATUS } from './tokens';

@Module({})
class ScalerHttpModule {
  static with(status: ScalerStatus, metrics: ScalerMetrics): DynamicModule {
    return {
      module: ScalerHttpModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [ScalerHealthController, ScalerMetricsController],
      providers: [
        { provide: SCALER_STATUS, useValue: status },
        { provide: SCALER_METRICS, useValue: metrics },
      ],
    };
  }
}

export interface ScalerHttp {
  /** `http://host:port`, with the port actually bound (SCALER_HTTP_PORT=0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/** The scaler's small HTTP server: `/metrics`, `/health/live`, `/health/ready`. */
export async function startScalerHttp(opts: { host: string; port: number; status: ScalerStatus; metrics: ScalerMetrics }): Promise<ScalerHttp> {
  const app = await NestFactory.create<NestFastifyApplication>(ScalerHttpModule.with(opts.status, opts.metrics), new FastifyAdapter({ logger: false }), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  await app.listen({ port: opts.port, host: opts.host });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { url, close: () => app.close() };
}
