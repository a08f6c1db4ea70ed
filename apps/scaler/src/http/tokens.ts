/** Injection tokens of the scaler's HTTP app (explicit: no decorator metadata is emitted). */
export const SCALER_STATUS = Symbol('ScalerStatus');
export const SCALER_METRICS = Symbol('ScalerMetrics');
