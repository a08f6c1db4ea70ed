import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '@fastvlm/observability';
import { auth, chatBody, png, postJson } from '../support/requests';
import { API_KEYS, cleanupPrefix, startWorker, stopWorker, uniquePrefix, until, type GatewayHandle, type WorkerProcess } from '../support/stack';
import { LogCapture, parseJsonLines, startLoggingGateway } from './capture';

describe('structured logs', () => {
  const prefix = uniquePrefix();
  const logs = new LogCapture();
  let tracing: Tracing;
  let gw: GatewayHandle;
  let worker: WorkerProcess;

  beforeAll(async () => {
    // As the gateway's main does: no exporter configured, ids only.
    tracing = await startTracing({ serviceName: 'fastvlm-gateway', env: {} });
    [gw, worker] = await Promise.all([startLoggingGateway(prefix, logs), startWorker(prefix)]);
  });
  afterAll(async () => {
    await gw?.close();
    if (worker) await stopWorker(worker);
    await tracing?.shutdown();
    await cleanupPrefix(prefix);
  });

  it('carry the request id and the trace id of a request on the gateway and on the worker, and never its key or content', async () => {
    const traceId = '5b8efff798038103d269b633813fc60c';
    const question = 'A question that must not be logged: zebra-umbrella-42?';
    const res = await postJson(`${gw.url}/v1/chat/completions`, chatBody(await png(30, 30, 13), question, { max_tokens: 8 }), {
      ...auth(),
      traceparent: `00-${traceId}-eee19b7ec3c1b174-01`,
      'x-request-id': 'req-logs-1',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe('req-logs-1');
    const answer = ((await res.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message.content ?? '';

    const request = await until('the request log line', () => logs.lines().find((l) => l.msg === 'request' && l.request_id === 'req-logs-1'));
    expect(request.trace_id).toBe(traceId);
    expect(request.status).toBe(200);
    const finished = await until('the worker to log the job', () => parseJsonLines(worker.output()).find((l) => l.msg === 'job finished' && l.trace_id === traceId));
    expect(finished.request_id).toBe('req-logs-1');
    expect(finished.span_id).toMatch(/^[0-9a-f]{16}$/);

    const everything = logs.raw() + worker.output();
    expect(everything).not.toContain(API_KEYS.acme);
    expect(everything).not.toContain('zebra-umbrella-42');
    if (answer.trim().length > 3) expect(everything).not.toContain(answer);
  });

  it('make a request id and a trace id when the caller sends none', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { headers: auth() });
    const id = res.headers.get('x-request-id') ?? '';
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const line = await until('the request log line', () => logs.lines().find((l) => l.msg === 'request' && l.request_id === id));
    expect(line.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(line.trace_id).not.toBe('0'.repeat(32));
  });

  it('replace an unsafe X-Request-Id instead of logging it', async () => {
    const res = await fetch(`${gw.url}/v1/models`, { headers: { ...auth(), 'x-request-id': 'evil\\"} injected' } });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });
});
