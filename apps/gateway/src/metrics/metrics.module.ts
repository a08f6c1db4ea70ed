import { Global, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import type { WorkerRegistry } from '@fastvlm/jobs';
import { GatewayMetrics, flushTracing } from '@fastvlm/observability';
import { LOGGER } from '../http/logger';
import type { Pools } from '../infra/pools';
import { POOLS, REGISTRY } from '../infra/tokens';
import { ModelCatalog } from '../models/model-catalog';
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
      inject: [POOLS, ModelCatalog, REGISTRY, LOGGER],
      useFactory: (pools: Pools, catalog: ModelCatalog, registry: WorkerRegistry, log: Logger) => {
        const m = new GatewayMetrics((err) => log.warn({ err }, 'metric observation failed'), catalog.routing.models);
        // Every pool's queue: the configured models' (with or without workers) and those live workers announce.
        m.observeQueues(async () => {
          const now = Date.now();
          return Promise.all(
            (await catalog.pools()).map(async (p) => {
              const { queue } = pools.of(p.id);
              return { model: p.id, queue: queue.name, ...(await readQueue(queue, now)) };
            }),
          );
        });
        m.observeWorkers(() => readWorkers(registry, Date.now(), catalog.routing.models));
        m.observeModelLoadFailures(() => registry.loadFailures());
        return m;
      },
    },
    TracingFlush,
  ],
  exports: [METRICS],
})
export class MetricsModule {}
