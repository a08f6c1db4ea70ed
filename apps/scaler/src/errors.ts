/**
 * Errors of the scaler's gRPC calls, as typed values; `grpc/status.ts` maps
 * them (and `InvalidScalerMetadata` from @fastvlm/autoscaling) to gRPC codes.
 */

/** A GetMetrics call named a metric this scaler does not serve for the ScaledObject. */
export class UnknownMetric extends Error {
  constructor(
    readonly metricName: string,
    readonly served: string,
  ) {
    super(`metricName: unknown metric "${metricName}" (this ScaledObject's metric is "${served}", optionally with KEDA's "sN-" prefix)`);
    this.name = 'UnknownMetric';
  }
}

/** The call's ScaledObjectRef lacks what names the ScaledObject. */
export class InvalidScaledObjectRef extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`scaledObjectRef.${field}: ${message}`);
    this.name = 'InvalidScaledObjectRef';
  }
}

/** The scaler is shutting down: KEDA should ask another replica (or this one after its restart). */
export class ScalerStopping extends Error {
  constructor() {
    super('the scaler is shutting down');
    this.name = 'ScalerStopping';
  }
}
