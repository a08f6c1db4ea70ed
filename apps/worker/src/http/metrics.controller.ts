import { Controller, Get, Header, Inject } from '@nestjs/common';
import { PROMETHEUS_CONTENT_TYPE, type WorkerMetrics } from '@fastvlm/observability';
import { WORKER_METRICS } from './tokens';

@Controller('metrics')
export class WorkerMetricsController {
  constructor(@Inject(WORKER_METRICS) private readonly metrics: WorkerMetrics) {}

  @Get()
  @Header('content-type', PROMETHEUS_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
