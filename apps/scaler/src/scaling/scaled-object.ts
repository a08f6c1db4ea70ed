import { parseScalerMetadata, type ScalerSettings } from '@fastvlm/autoscaling';
import { InvalidScaledObjectRef, UnknownMetric } from '../errors';

/** A ScaledObject as KEDA names it in every call (the proto's `ScaledObjectRef`). */
export interface ScaledObjectRef {
  name: string;
  namespace: string;
  scalerMetadata: Record<string, string>;
}

/** The target of the one metric: with KEDA's default `AverageValue`, the HPA asks for ceil(metric / 1) = the desired count. */
export const METRIC_TARGET = 1;

/** KEDA prefixes each trigger's metric with `s<trigger index>-` in the HPA and strips it again before GetMetrics. */
const KEDA_INDEX_PREFIX = /^s\d+-/;

/** A ScaledObject's identity and validated settings; throws `InvalidScalerMetadata` or `InvalidScaledObjectRef`. */
export function resolveScaledObject(ref: ScaledObjectRef, defaultQueue: string): { key: string; settings: ScalerSettings } {
  const name = (ref.name ?? '').trim();
  if (!name) throw new InvalidScaledObjectRef('name', 'required');
  // KEDA's own trigger keys (scalerAddress, TLS settings) come along; parseScalerMetadata ignores them.
  return { key: `${(ref.namespace ?? '').trim()}/${name}`, settings: parseScalerMetadata(ref.scalerMetadata ?? {}, defaultQueue) };
}

/**
 * The metric a ScaledObject on `queue` is served under. Kubernetes metric names
 * take lower-case letters, digits and `-`; queue names may hold more, so those
 * are folded (the metric name only labels the HPA: the answer follows the metadata).
 */
export function metricNameFor(queue: string): string {
  return `fastvlm-${queue.toLowerCase().replace(/[^a-z0-9-]/g, '-')}-desired-replicas`;
}

/** Checks a GetMetrics name, with or without KEDA's `sN-` prefix, against the one served. */
export function checkMetricName(requested: string, served: string): void {
  if (requested === served || requested.replace(KEDA_INDEX_PREFIX, '') === served) return;
  throw new UnknownMetric(requested, served);
}
