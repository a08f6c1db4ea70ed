import type { ScaledObjectRef } from '../scaling/scaled-object';

/** The messages of externalscaler.proto, as @grpc/proto-loader gives and takes them (PROTO_LOADER_OPTIONS). */
export type { ScaledObjectRef };

export interface IsActiveResponse {
  result: boolean;
}

export interface MetricSpec {
  metricName: string;
  targetSize: number;
  targetSizeFloat: number;
}

export interface GetMetricSpecResponse {
  metricSpecs: MetricSpec[];
}

export interface GetMetricsRequest {
  /** null when the caller left it out. */
  scaledObjectRef: ScaledObjectRef | null;
  metricName: string;
}

export interface MetricValue {
  metricName: string;
  metricValue: number;
  metricValueFloat: number;
}

export interface GetMetricsResponse {
  metricValues: MetricValue[];
}
