import { Controller, Get, Header, Inject } from '@nestjs/common';
import { PROMETHEUS_CONTENT_TYPE, type ScalerMetrics } from '@fastvlm/observability';
import { SCALER_METRICS } from './tokens';

@Controller('metrics')
export class ScalerMetricsController {
  constructor(@Inject(SCALER_METRICS) private readonly metrics: ScalerMetrics) {}

  @Get()
  @Header('content-type', PROMETHEUS_CONTENT_TYPE)
  @Header('cache-control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
