/** What readiness asks of the scaler. */
export interface ScalerStatus {
  /** Resolves when Redis answers a PING. */
  pingRedis(): Promise<unknown>;
  /** Whether the gRPC server is bound and serving. */
  grpcServing(): boolean;
}
