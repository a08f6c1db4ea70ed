import { Controller, Get, Header, Inject } from '@nestjs/common';
import { PROMETHEUS_CONTENT_TYPE, type GatewayMetrics } from '@fastvlm/observability';
import { METRICS } from './tokens';

/** Prometheus scrape endpoint (unauthenticated, like every exporter; keep it off public ingress). */
@Controller('metrics')
export class MetricsController {
  constructor(@Inject(METRICS) private readonly metrics: GatewayMetrics) {}

  @Get()
  @Header('content-type', PROMETHEUS_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
