import { createServer, type Server } from 'node:http';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '@fastvlm/observability';
import { auth, chatBody, png, postJson } from '../support/requests';
import { cleanupPrefix, startGateway, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';

/** A span as this test compares them, whichever process recorded it. */
interface SpanView {
  service: string;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { traceId: string; spanId: string; parentSpanId?: string; name: string }[] }[];
  }[];
}

/** A minimal OTLP/HTTP JSON receiver: what a collector would get from the worker. */
async function otlpReceiver(): Promise<{ server: Server; url: string; spans: SpanView[] }> {
  const spans: SpanView[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const msg = JSON.parse(body) as OtlpJson;
      for (const rs of msg.resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '';
        for (const s of (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? [])) {
          spans.push({ service, name: s.name, traceId: s.traceId, spanId: s.spanId, parentSpanId: s.parentSpanId || undefined });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return { server, url: `http://127.0.0.1:${port}/v1/traces`, spans };
}

describe('one request, one trace across gateway, queue and worker', () => {
  const prefix = uniquePrefix();
  const memory = new InMemorySpanExporter();
  let tracing: Tracing;
  let receiver: Awaited<ReturnType<typeof otlpReceiver>>;
  let gw: GatewayHandle;
  let worker: WorkerProcess;

  const gatewaySpans = (): SpanView[] =>
    memory.getFinishedSpans().map((s) => ({
      service: 'fastvlm-gateway',
      name: s.name,
      traceId: s.spanContext().traceId,
      spanId: s.spanContext().spanId,
      parentSpanId: s.parentSpanContext?.spanId,
    }));

  beforeAll(async () => {
    tracing = await startTracing({ serviceName: 'fastvlm-gateway', env: {}, spanProcessors: [new SimpleSpanProcessor(memory)] });
    receiver = await otlpReceiver();
    // The worker is configured only through the standard variables, as in production.
    const otel = {
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: '50',
    };
    [gw, worker] = await Promise.all([startGateway(prefix), startWorker(prefix, otel)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await tracing?.shutdown();
    receiver?.server.close();
    await cleanupPrefix(prefix);
  });

  /** Every span of `traceId`, once the worker's spans and the gateway's server span have all arrived. */
  async function traceOf(traceId: string): Promise<SpanView[]> {
    return until('both sides of the trace', () => {
      const all = [...gatewaySpans(), ...receiver.spans].filter((s) => s.traceId === traceId);
      // The worker exports in batches: the job's span ends (and is sent) after the engine's.
      const has = (name: string): boolean => all.some((s) => s.name === name);
      return has('engine.decode') && has('worker.batch') && has('queue.wait') && has('POST /v1/chat/completions') ? all : undefined;
    });
  }

  const one = (spans: SpanView[], name: string): SpanView => {
    const found = spans.filter((s) => s.name === name);
    expect(found, name).toHaveLength(1);
    return found[0] as SpanView;
  };

  it('continues an incoming traceparent through the job into the worker, with the right parents', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(await png(28, 28, 17), 'Trace this request.', { max_tokens: 6 }), {
      ...auth(),
      traceparent: `00-${traceId}-${callerSpan}-01`,
    });
    expect(res.status).toBe(200);
    const spans = await traceOf(traceId);

    const server = one(spans, 'POST /v1/chat/completions');
    expect(server.service).toBe('fastvlm-gateway');
    expect(server.parentSpanId).toBe(callerSpan);
    for (const name of ['authenticate', 'validate', 'cache.lookup', 'queue.enqueue']) expect(one(spans, name).parentSpanId, name).toBe(server.spanId);

    const enqueue = one(spans, 'queue.enqueue');
    const wait = one(spans, 'queue.wait');
    const batch = one(spans, 'worker.batch');
    expect(wait.service).toBe('fastvlm-worker');
    expect(batch.service).toBe('fastvlm-worker');
    expect(wait.parentSpanId).toBe(enqueue.spanId);
    expect(batch.parentSpanId).toBe(enqueue.spanId);
    for (const name of ['engine.preprocess', 'engine.vision_encoder', 'engine.prefill', 'engine.decode']) {
      const s = one(spans, name);
      expect(s.service, name).toBe('fastvlm-worker');
      expect(s.parentSpanId, name).toBe(batch.spanId);
    }
  });

  it('starts a trace at the gateway when the caller sends none, and the worker joins it', async () => {
    const before = new Set(gatewaySpans().map((s) => s.spanId));
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(await png(28, 28, 18), 'No traceparent here.', { max_tokens: 4 }));
    expect(res.status).toBe(200);
    const server = await until('the server span', () =>
      gatewaySpans().find((s) => s.name === 'POST /v1/chat/completions' && !before.has(s.spanId)),
    );
    expect(server.parentSpanId).toBeUndefined();
    const spans = await traceOf(server.traceId);
    expect(one(spans, 'worker.batch').parentSpanId).toBe(one(spans, 'queue.enqueue').spanId);
    // Nothing of this request went into another trace.
    const names = new Set(spans.map((s) => s.name));
    expect([...names].sort()).toEqual(
      ['POST /v1/chat/completions', 'authenticate', 'cache.lookup', 'engine.decode', 'engine.prefill', 'engine.preprocess', 'engine.vision_encoder', 'queue.enqueue', 'queue.wait', 'validate', 'worker.batch'].sort(),
    );
  });
});
