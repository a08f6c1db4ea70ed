import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { SpanKind, failSpan, requestContext, tracer, type GatewayMetrics } from '@fastvlm/observability';

/** A caller's `X-Request-Id` is kept when it is a plain token (it ends up in logs); otherwise one is made. */
export function requestId(req: { headers: Record<string, string | string[] | undefined> }): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * Per request: a server span (child of an incoming W3C `traceparent`) made the
 * active context for everything that handles the request, the request id in
 * the response and in that context (logs read both from it), and the request
 * counted by route and status once the response is over (streams included).
 */
export function installHttpTelemetry(fastify: FastifyInstance, metrics: GatewayMetrics, log: Logger, logRequests: boolean): void {
  fastify.addHook('onRequest', (req, reply, done) => {
    const started = performance.now();
    const route = req.routeOptions.url ?? 'unmatched';
    const parent = requestContext(req.headers, req.id);
    const span = tracer().startSpan(
      `${req.method} ${route}`,
      { kind: SpanKind.SERVER, attributes: { 'http.request.method': req.method, 'http.route': route, 'fastvlm.request_id': req.id } },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    // Body chunks and socket events are emitted outside this request's async
    // context; binding the streams carries the context into their listeners.
    context.bind(ctx, req.raw);
    context.bind(ctx, reply.raw);
    // Set on the raw response so that hijacked (SSE) responses carry it too.
    reply.raw.setHeader('x-request-id', req.id);
    reply.raw.once('close', () => {
      const status = reply.raw.statusCode;
      const aborted = !reply.raw.writableFinished;
      metrics.httpRequest(route, req.method, status, (performance.now() - started) / 1000);
      span.setAttribute('http.response.status_code', status);
      if (aborted) span.setAttribute('fastvlm.client_aborted', true);
      if (status >= 500) failSpan(span, new Error(`HTTP ${status}`));
      span.end();
      if (logRequests) logRequest(log, req, status, started, aborted);
    });
    context.with(ctx, done);
  });
}

function logRequest(log: Logger, req: FastifyRequest, status: number, started: number, aborted: boolean): void {
  log.info({ method: req.method, url: req.url, status, ms: Math.round(performance.now() - started), ...(aborted ? { aborted } : {}) }, 'request');
}
