import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { WorkerRegistry } from '@fastvlm/jobs';
import { GatewayMetrics, flushTracing } from '@fastvlm/observability';
import { CONFIG, type GatewayConfig } from '../config';
import { LOGGER } from '../http/logger';
import { QUEUE, REGISTRY } from '../infra/tokens';
import { MetricsController } from './metrics.controller';
import { readQueue, readWorkers } from './queue-snapshot';
import { METRICS } from './tokens';

/** Spans still batched in this process leave before it exits. */
class TracingFlush implements OnApplicationShutdown {
  async onApplicationShutdown(): Promise<void> {
    await flushTracing();
  }
}

/** `/metrics` and the gateway's instruments; queue and worker gauges are read from Redis at scrape time. */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    {
      provide: METRICS,
      inject: [QUEUE, REGISTRY, LOGGER, CONFIG],
      useFactory: (queue: Queue, registry: WorkerRegistry, log: Logger, cfg: GatewayConfig) => {
        const m = new GatewayMetrics((err) => log.warn({ err }, 'metric observation failed'));
        m.observeQueue(() => readQueue(queue, Date.now()));
        m.observeWorkers(() => readWorkers(registry, Date.now(), cfg.FASTVLM_MODEL));
        m.observeModelLoadFailures(() => registry.loadFailures());
        return m;
      },
    },
    TracingFlush,
  ],
  exports: [METRICS],
})
export class MetricsModule {}
