import { Writable } from 'node:stream';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { context } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from './logging';
import { startTracing, type Tracing } from './tracing/setup';
import { inSpan, requestContext } from './tracing/spans';

function capture(): { lines: () => Record<string, unknown>[]; stream: Writable } {
  let out = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  });
  return { stream, lines: () => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('createLogger', () => {
  let tracing: Tracing;
  beforeAll(async () => {
    tracing = await startTracing({ serviceName: 'test', env: {}, spanProcessors: [new SimpleSpanProcessor(new InMemorySpanExporter())] });
  });
  afterAll(() => tracing.shutdown());

  it('never writes Authorization headers, keys, questions, answers or bodies', () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 't', level: 'info', destination: stream });
    log.info(
      {
        req: { headers: { authorization: 'Bearer secret-key-0123456789' } },
        apiKey: 'secret-key-0123456789',
        job: { question: 'what is my secret?', text: 'the answer' },
        body: { messages: [] },
        jobId: 'job_1',
      },
      'hello',
    );
    const raw = JSON.stringify(lines());
    expect(raw).not.toContain('secret-key');
    expect(raw).not.toContain('what is my secret');
    expect(raw).not.toContain('the answer');
    expect(lines()[0]?.jobId).toBe('job_1');
  });

  it('adds the request id and the trace id of the active context to every line, and honours a traceparent', async () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 't', level: 'info', destination: stream });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const ctx = requestContext({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` }, 'req-abc');
    await context.with(ctx, () => inSpan('work', () => log.info('inside')));
    log.info('outside');
    const [inside, outside] = lines();
    expect(inside?.request_id).toBe('req-abc');
    expect(inside?.trace_id).toBe(traceId);
    expect(inside?.span_id).toMatch(/^[0-9a-f]{16}$/);
    expect(outside?.request_id).toBeUndefined();
    expect(outside?.trace_id).toBeUndefined();
  });

  it('honours the configured level', () => {
    const { stream, lines } = capture();
    const log = createLogger({ name: 't', level: 'warn', destination: stream });
    log.info('dropped');
    log.warn('kept');
    expect(lines().map((l) => l.msg)).toEqual(['kept']);
  });
});
