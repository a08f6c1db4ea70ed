import { context, SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportConfigured } from './config';
import { startTracing, type Tracing } from './setup';
import { contextFromCarrier, inSpan, recordSpan, requestContext, traceCarrier } from './spans';

describe('trace context in job data', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  beforeAll(async () => {
    tracing = await startTracing({ serviceName: 'test', env: {}, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  });
  afterAll(() => tracing.shutdown());

  it('links the consumer side to the producer span through a string carrier, request id included', async () => {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const incoming = requestContext({ traceparent: `00-${traceId}-b7ad6b7169203331-01` }, 'req-1');
    const carrier = await context.with(incoming, () => inSpan('queue.enqueue', () => traceCarrier(), { kind: SpanKind.PRODUCER }));
    expect(carrier?.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(carrier?.['x-request-id']).toBe('req-1');
    // What a worker does with the job's data, possibly in another process.
    const parent = contextFromCarrier(JSON.parse(JSON.stringify(carrier)) as Record<string, string>);
    recordSpan('queue.wait', Date.now() - 50, Date.now(), {}, parent);
    const spans = exporter.getFinishedSpans();
    const enqueue = spans.find((s) => s.name === 'queue.enqueue');
    const wait = spans.find((s) => s.name === 'queue.wait');
    expect(enqueue?.spanContext().traceId).toBe(traceId);
    expect(enqueue?.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
    expect(wait?.spanContext().traceId).toBe(traceId);
    expect(wait?.parentSpanContext?.spanId).toBe(enqueue?.spanContext().spanId);
  });

  it('starts a new trace for a malformed traceparent, and records errors on the span', async () => {
    const ctx = requestContext({ traceparent: 'not-a-traceparent' }, 'req-2');
    await expect(context.with(ctx, () => inSpan('fails', () => Promise.reject(new Error('nope'))))).rejects.toThrow('nope');
    const span = exporter.getFinishedSpans().find((s) => s.name === 'fails');
    expect(span?.parentSpanContext).toBeUndefined();
    expect(span?.status.code).toBe(2);
    expect(span?.events.some((e) => e.name === 'exception')).toBe(true);
  });
});

describe('exportConfigured', () => {
  it('exports only when an exporter or an OTLP endpoint is named', () => {
    expect(exportConfigured({ OTEL_SDK_DISABLED: false })).toBe(false);
    expect(exportConfigured({ OTEL_SDK_DISABLED: false, OTEL_TRACES_EXPORTER: 'none' })).toBe(false);
    expect(exportConfigured({ OTEL_SDK_DISABLED: false, OTEL_TRACES_EXPORTER: 'otlp' })).toBe(true);
    expect(exportConfigured({ OTEL_SDK_DISABLED: false, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' })).toBe(true);
    expect(exportConfigured({ OTEL_SDK_DISABLED: true, OTEL_TRACES_EXPORTER: 'otlp' })).toBe(false);
  });
});
