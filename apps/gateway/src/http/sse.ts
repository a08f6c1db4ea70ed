import type { FastifyReply } from 'fastify';

/**
 * Server-sent events written to the raw response. Fastify is told the reply
 * is handled here (hijack), so nothing else writes to it.
 */
export class SseWriter {
  private closed = false;
  readonly aborted: AbortSignal;

  constructor(private readonly reply: FastifyReply, extraHeaders: Record<string, string> = {}) {
    const ctrl = new AbortController();
    this.aborted = ctrl.signal;
    reply.hijack();
    reply.raw.on('close', () => {
      this.closed = true;
      ctrl.abort();
    });
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx must not buffer the stream.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    reply.raw.flushHeaders();
  }

  send(data: unknown, opts: { id?: string; event?: string } = {}): void {
    if (this.closed) return;
    let frame = '';
    if (opts.id) frame += `id: ${opts.id}\n`;
    if (opts.event) frame += `event: ${opts.event}\n`;
    frame += `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    this.reply.raw.write(frame);
  }

  end(): void {
    if (this.closed) return;
    this.closed = true;
    this.reply.raw.end();
  }
}
