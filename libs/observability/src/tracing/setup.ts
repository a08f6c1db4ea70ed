import { ProxyTracerProvider, context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, NodeTracerProvider, type SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { exportConfigured, type TracingEnv } from './config';

export interface TracingOptions {
  /** `service.name` unless OTEL_SERVICE_NAME says otherwise. */
  serviceName: string;
  env: TracingEnv;
  /** Tests: record every span with these processors instead of what OTEL_* configures. */
  spanProcessors?: SpanProcessor[];
}

export interface Tracing {
  /** Whether spans are recorded and exported (false: only ids are made, for propagation and logs). */
  readonly exporting: boolean;
  /** Flushes pending spans and unregisters the providers. */
  shutdown(): Promise<void>;
}

/**
 * Registers tracing for this process. With an exporter configured through the
 * standard OTEL_* variables, the Node SDK builds it (OTLP over HTTP or gRPC,
 * batching, sampler from OTEL_TRACES_SAMPLER). Without one, a provider that
 * samples nothing: spans are non-recording objects that still carry ids, so
 * trace context reaches the worker and every log line has a trace id, at the
 * cost of generating two random ids per span.
 */
export async function startTracing(opts: TracingOptions): Promise<Tracing> {
  if (opts.env.OTEL_SDK_DISABLED && !opts.spanProcessors) return { exporting: false, shutdown: () => Promise.resolve() };
  const serviceName = opts.env.OTEL_SERVICE_NAME ?? opts.serviceName;
  // Job data carries W3C trace context whatever OTEL_PROPAGATORS says: the worker reads exactly that.
  const propagator = new W3CTraceContextPropagator();
  if (!opts.spanProcessors && exportConfigured(opts.env)) {
    // Loaded only when used: the SDK pulls in every exporter (gRPC included).
    const { NodeSDK } = await import('@opentelemetry/sdk-node');
    const sdk = new NodeSDK({
      serviceName,
      textMapPropagator: propagator,
      contextManager: new AsyncLocalStorageContextManager(),
      instrumentations: [],
      // Metrics are pulled from /metrics and logs go to stdout; the SDK must not export either.
      metricReaders: [],
      logRecordProcessors: [],
    });
    sdk.start();
    return { exporting: true, shutdown: () => sdk.shutdown().finally(unregister) };
  }
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }),
    sampler: opts.spanProcessors ? new AlwaysOnSampler() : new AlwaysOffSampler(),
    spanProcessors: opts.spanProcessors ?? [],
  });
  provider.register({ propagator });
  return { exporting: Boolean(opts.spanProcessors), shutdown: () => provider.shutdown().finally(unregister) };
}

function unregister(): void {
  trace.disable();
  context.disable();
  propagation.disable();
}

/** Exports the spans this process still holds (call before exiting); a no-op when nothing records. */
export async function flushTracing(): Promise<void> {
  const global = trace.getTracerProvider();
  const provider = global instanceof ProxyTracerProvider ? global.getDelegate() : global;
  await (provider as { forceFlush?: () => Promise<void> }).forceFlush?.();
}
