import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  createContextKey,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

export { SpanKind, type Span, type Context };

const TRACER = 'fastvlm';
const w3c = new W3CTraceContextPropagator();
const REQUEST_ID = createContextKey('fastvlm.request_id');
/** Carrier key of the request id that rides along with the W3C fields in job data. */
const REQUEST_ID_FIELD = 'x-request-id';

type Headers = Record<string, string | string[] | undefined>;
const fromHeaders: TextMapGetter<Headers> = { get: (h, k) => h[k], keys: (h) => Object.keys(h) };
const fromCarrier: TextMapGetter<Record<string, string>> = { get: (c, k) => c[k], keys: (c) => Object.keys(c) };
const intoCarrier: TextMapSetter<Record<string, string>> = { set: (c, k, v) => (c[k] = v) };

export function tracer(): ReturnType<typeof trace.getTracer> {
  return trace.getTracer(TRACER);
}

/**
 * The active span when it is a local span that is not being recorded (an
 * unsampled trace): under the standard samplers its children would not be
 * recorded either, so they are not made, and the trace and request ids in
 * logs and job data stay those of the active span. A remote parent (from a
 * traceparent) is never recording itself; its children are made as usual.
 */
function unsampledParent(): Span | undefined {
  const active = trace.getActiveSpan();
  return active && !active.isRecording() && active.spanContext().isRemote !== true ? active : undefined;
}

/**
 * Runs `fn` inside a child span of the active one; the span ends when `fn`
 * settles and records a thrown error. Works (as a no-op) before tracing starts.
 */
export async function inSpan<T>(name: string, fn: (span: Span) => Promise<T> | T, options: SpanOptions = {}): Promise<T> {
  const unsampled = unsampledParent();
  if (unsampled) return fn(unsampled);
  return tracer().startActiveSpan(name, options, async (span) => {
    try {
      return await fn(span);
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** `inSpan` for synchronous work. */
export function inSpanSync<T>(name: string, fn: (span: Span) => T, options: SpanOptions = {}): T {
  const unsampled = unsampledParent();
  if (unsampled) return fn(unsampled);
  return tracer().startActiveSpan(name, options, (span) => {
    try {
      return fn(span);
    } catch (e) {
      failSpan(span, e);
      throw e;
    } finally {
      span.end();
    }
  });
}

/** A finished span for a stretch of time measured elsewhere (queue wait, engine phases). */
export function recordSpan(name: string, startMs: number, endMs: number, attributes: Attributes = {}, parent: Context = context.active()): void {
  tracer().startSpan(name, { startTime: startMs, attributes }, parent).end(Math.max(startMs, endMs));
}

export function failSpan(span: Span, e: unknown): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
  if (e instanceof Error) span.recordException(e);
}

/** Context of an incoming request: its `traceparent` (when valid) and the request id for logs. */
export function requestContext(headers: Headers, requestId: string): Context {
  return w3c.extract(ROOT_CONTEXT, headers, fromHeaders).setValue(REQUEST_ID, requestId);
}

/** The active trace context (and request id) as strings, for a job's data. */
export function traceCarrier(ctx: Context = context.active()): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  w3c.inject(ctx, carrier, intoCarrier);
  const requestId = ctx.getValue(REQUEST_ID);
  if (typeof requestId === 'string') carrier[REQUEST_ID_FIELD] = requestId;
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

/** The context a job was enqueued in, rebuilt from its data. */
export function contextFromCarrier(carrier: Record<string, string> | undefined): Context {
  if (!carrier) return ROOT_CONTEXT;
  const ctx = w3c.extract(ROOT_CONTEXT, carrier, fromCarrier);
  const requestId = carrier[REQUEST_ID_FIELD];
  return requestId ? ctx.setValue(REQUEST_ID, requestId) : ctx;
}

/** Ids of the active request and span, as log fields. */
export function activeIds(): { request_id?: string; trace_id?: string; span_id?: string } {
  const ctx = context.active();
  const ids: { request_id?: string; trace_id?: string; span_id?: string } = {};
  const requestId = ctx.getValue(REQUEST_ID);
  if (typeof requestId === 'string') ids.request_id = requestId;
  const sc = trace.getSpan(ctx)?.spanContext();
  if (sc && trace.isSpanContextValid(sc)) {
    ids.trace_id = sc.traceId;
    ids.span_id = sc.spanId;
  }
  return ids;
}
