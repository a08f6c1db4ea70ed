import { describe, expect, it } from 'vitest';
import { InvalidScalerMetadata } from '@fastvlm/autoscaling';
import { UnknownMetric, InvalidScaledObjectRef } from '../errors';
import { checkMetricName, metricNameFor, resolveScaledObject } from './scaled-object';

describe('ScaledObject identity, metric name and metadata', () => {
  it('names a ScaledObject namespace/name and validates its metadata with the inference queue as default', () => {
    expect(resolveScaledObject({ name: 'workers', namespace: 'ml', scalerMetadata: { strategy: 'predictive' } }, 'inference')).toMatchObject({
      key: 'ml/workers',
      settings: { queue: 'inference', strategy: 'predictive' },
    });
    expect(() => resolveScaledObject({ name: ' ', namespace: 'ml', scalerMetadata: {} }, 'inference')).toThrow(InvalidScaledObjectRef);
    // KEDA passes its own connection settings along with ours.
    const keda = { scalerAddress: 'fastvlm-scaler:9090', enableTLS: 'false', unsafeSsl: 'false', strategy: 'conservative' };
    expect(resolveScaledObject({ name: 'w', namespace: 'ml', scalerMetadata: keda }, 'inference').settings.strategy).toBe('conservative');
    expect(() => resolveScaledObject({ name: 'w', namespace: 'ml', scalerMetadata: { minReplicas: '3', maxReplicas: '1' } }, 'inference')).toThrow(InvalidScalerMetadata);
  });

  it('serves a Kubernetes-safe metric name and accepts it with or without KEDA’s sN- prefix', () => {
    expect(metricNameFor('inference')).toBe('fastvlm-inference-desired-replicas');
    expect(metricNameFor('Pool_A.v2')).toBe('fastvlm-pool-a-v2-desired-replicas');
    const served = metricNameFor('inference');
    expect(() => checkMetricName(served, served)).not.toThrow();
    expect(() => checkMetricName(`s0-${served}`, served)).not.toThrow();
    expect(() => checkMetricName(`s12-${served}`, served)).not.toThrow();
    expect(() => checkMetricName('s0-fastvlm-other-desired-replicas', served)).toThrow(UnknownMetric);
    expect(() => checkMetricName('', served)).toThrow(/metricName/);
  });
});
