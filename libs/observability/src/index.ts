export * from './metrics/catalogue';
export * from './metrics/registry';
export * from './metrics/gateway-metrics';
export * from './metrics/worker-metrics';
export * from './tracing/config';
export * from './tracing/setup';
export * from './tracing/spans';
export * from './logging';
