import { status as Status } from '@grpc/grpc-js';
import { InvalidScalerMetadata } from '@fastvlm/autoscaling';
import { InvalidScaledObjectRef, ScalerStopping, UnknownMetric } from '../errors';

/** A gRPC status to end a call with. */
export interface GrpcFailure {
  code: Status;
  details: string;
  /** Whether this is the caller's mistake (not worth more than a debug line here). */
  callerFault: boolean;
}

/**
 * The one place errors become gRPC codes: a wrong ScaledObject (metadata, name,
 * metric) is INVALID_ARGUMENT with a message naming the field; anything else
 * (Redis away, shutting down) is UNAVAILABLE, which KEDA retries.
 */
export function toGrpcStatus(e: unknown): GrpcFailure {
  if (e instanceof InvalidScalerMetadata || e instanceof InvalidScaledObjectRef || e instanceof UnknownMetric) {
    return { code: Status.INVALID_ARGUMENT, details: e.message, callerFault: true };
  }
  if (e instanceof ScalerStopping) return { code: Status.UNAVAILABLE, details: e.message, callerFault: false };
  const why = e instanceof Error ? e.message : String(e);
  return { code: Status.UNAVAILABLE, details: `the queue signals cannot be read: ${why}`, callerFault: false };
}

/** `INVALID_ARGUMENT`, `OK`, …: the code as the metric label and logs spell it. */
export function codeName(code: Status): string {
  return Status[code] ?? String(code);
}
