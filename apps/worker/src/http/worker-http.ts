import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { TerminusModule } from '@nestjs/terminus';
import type { WorkerMetrics } from '@fastvlm/observability';
import type { WorkerStatus } from '../telemetry/worker-status';
import { WorkerHealthController } from './health.controller';
import { WorkerMetricsController } from './metrics.controller';
import { WORKER_METRICS, WORKER_STATUS } from './tokens';

@Module({})
class WorkerHttpModule {
  static with(status: WorkerStatus, metrics: WorkerMetrics): DynamicModule {
    return {
      module: WorkerHttpModule,
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [WorkerHealthController, WorkerMetricsController],
      providers: [
        { provide: WORKER_STATUS, useValue: status },
        { provide: WORKER_METRICS, useValue: metrics },
      ],
    };
  }
}

export interface WorkerHttp {
  /** `http://host:port`, with the port actually bound (WORKER_HTTP_PORT=0 picks a free one). */
  url: string;
  close(): Promise<void>;
}

/**
 * The worker's small HTTP server: `/metrics`, `/health/live`, `/health/ready`.
 * It starts before the model loads, so that liveness answers during a long
 * load and readiness says why the worker is not ready yet.
 */
export async function startWorkerHttp(opts: { host: string; port: number; status: WorkerStatus; metrics: WorkerMetrics }): Promise<WorkerHttp> {
  const app = await NestFactory.create<NestFastifyApplication>(WorkerHttpModule.with(opts.status, opts.metrics), new FastifyAdapter({ logger: false }), {
    logger: ['error', 'warn'],
    abortOnError: false,
  });
  await app.listen({ port: opts.port, host: opts.host });
  const url = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  return { url, close: () => app.close() };
}
