import type { Attributes, Meter, ObservableResult } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { DataPointType, MeterProvider, type MetricData } from '@opentelemetry/sdk-metrics';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { METRICS, type LabelsOf, type MetricDef, type MetricKey } from './catalogue';

/** Content type of the Prometheus text exposition format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A scrape gives up on slow observations (Redis away) rather than hanging Prometheus. */
const COLLECT_TIMEOUT_MS = 5_000;

/** One series of a metric as last collected: a number, or a histogram's buckets. */
export interface MetricPoint {
  labels: Record<string, string>;
  value: number | { count: number; sum: number; boundaries: number[]; counts: number[] };
}

export type Observe<K extends MetricKey> = (emit: (value: number, labels: LabelsOf<K>) => void) => void | Promise<void>;

/**
 * The metrics of one app instance, on a MeterProvider of its own read by a
 * pull-only Prometheus reader. Not the global MeterProvider: two gateways in
 * one process (tests) each count their own traffic, and nothing is exported
 * anywhere until something scrapes `/metrics`.
 */
export class MetricsRegistry {
  private readonly reader = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  // (prefix, appendTimestamp, resource labels, withoutTargetInfo, withoutScopeInfo)
  private readonly serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  private readonly provider: MeterProvider;
  private readonly meter: Meter;

  constructor(
    serviceName: string,
    /** Receives errors of observations made at scrape time (they leave that series out of the scrape). */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.provider = new MeterProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
      readers: [this.reader],
    });
    this.meter = this.provider.getMeter('fastvlm');
  }

  counter<K extends MetricKey>(key: K): (value: number, labels: LabelsOf<K>) => void {
    const def: MetricDef = METRICS[key];
    const c = this.meter.createCounter(def.name, { description: def.help });
    return (value, labels) => c.add(value, labels);
  }

  histogram<K extends MetricKey>(key: K): (value: number, labels: LabelsOf<K>) => void {
    const def: MetricDef = METRICS[key];
    const h = this.meter.createHistogram(def.name, {
      description: def.help,
      ...(def.buckets ? { advice: { explicitBucketBoundaries: [...def.buckets] } } : {}),
    });
    return (value, labels) => h.record(value, labels);
  }

  /** A gauge this process moves up and down as things start and end. */
  upDown<K extends MetricKey>(key: K): (delta: number, labels: LabelsOf<K>) => void {
    const def: MetricDef = METRICS[key];
    const g = this.meter.createUpDownCounter(def.name, { description: def.help });
    return (delta, labels) => g.add(delta, labels);
  }

  /** A gauge read at scrape time (queue depth: one Redis round trip per scrape, none per request). */
  observeGauge<K extends MetricKey>(key: K, observe: Observe<K>): void {
    const def: MetricDef = METRICS[key];
    this.meter.createObservableGauge(def.name, { description: def.help }).addCallback((r) => this.observe(r, observe));
  }

  /** A cumulative count kept elsewhere (Redis, the engine) and read at scrape time. */
  observeCounter<K extends MetricKey>(key: K, observe: Observe<K>): void {
    const def: MetricDef = METRICS[key];
    this.meter.createObservableCounter(def.name, { description: def.help }).addCallback((r) => this.observe(r, observe));
  }

  /** Prometheus text of every metric. */
  async scrape(): Promise<string> {
    const { resourceMetrics, errors } = await this.reader.collect({ timeoutMillis: COLLECT_TIMEOUT_MS });
    for (const e of errors) this.onError(e);
    return this.serializer.serialize(resourceMetrics);
  }

  /** The current series of one metric (for the console's charts). */
  async points(key: MetricKey): Promise<MetricPoint[]> {
    const { resourceMetrics } = await this.reader.collect({ timeoutMillis: COLLECT_TIMEOUT_MS });
    const name = METRICS[key].name;
    const data = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
    return data ? toPoints(data) : [];
  }

  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }

  private async observe<K extends MetricKey>(result: ObservableResult, observe: Observe<K>): Promise<void> {
    try {
      await observe((value, labels) => result.observe(value, labels));
    } catch (e) {
      this.onError(e);
    }
  }
}

function toPoints(data: MetricData): MetricPoint[] {
  const labels = (a: Attributes): Record<string, string> => Object.fromEntries(Object.entries(a).map(([k, v]) => [k, String(v)]));
  switch (data.dataPointType) {
    case DataPointType.HISTOGRAM:
      return data.dataPoints.map((p) => ({
        labels: labels(p.attributes),
        value: { count: p.value.count, sum: p.value.sum ?? 0, boundaries: [...p.value.buckets.boundaries], counts: [...p.value.buckets.counts] },
      }));
    case DataPointType.SUM:
    case DataPointType.GAUGE:
      return data.dataPoints.map((p) => ({ labels: labels(p.attributes), value: p.value }));
    case DataPointType.EXPONENTIAL_HISTOGRAM:
      return [];
  }
}
