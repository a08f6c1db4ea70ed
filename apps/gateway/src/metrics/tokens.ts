/** Injection token of this gateway's GatewayMetrics. */
export const METRICS = Symbol('GatewayMetrics');
