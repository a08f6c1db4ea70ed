import type { FastifyReply } from 'fastify';

export interface SseOptions {
  /** Milliseconds between `: keep-alive` comments; 0 = none. */
  keepAliveMs: number;
  extraHeaders?: Record<string, string>;
}

/**
 * Server-sent events written to the raw response. Fastify is told the reply
 * is handled here (hijack), so nothing else writes to it.
 *
 * A comment line every `keepAliveMs` keeps the connection busy: proxies and
 * load balancers cut connections idle for longer than their timeout (often
 * 60 s), and a stream waiting in the queue may send nothing for minutes.
 * Clients ignore comments (EventSource and the OpenAI SDKs do).
 */
export class SseWriter {
  private closed = false;
  private readonly keepAlive: NodeJS.Timeout | null;
  readonly aborted: AbortSignal;

  constructor(private readonly reply: FastifyReply, opts: SseOptions) {
    const ctrl = new AbortController();
    this.aborted = ctrl.signal;
    reply.hijack();
    reply.raw.on('close', () => {
      this.closed = true;
      this.stopKeepAlive();
      ctrl.abort();
    });
    const extraHeaders = opts.extraHeaders ?? {};
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // Proxies such as nginx must not buffer the stream.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    reply.raw.flushHeaders();
    this.keepAlive = opts.keepAliveMs > 0 ? setInterval(() => this.comment('keep-alive'), opts.keepAliveMs) : null;
  }

  private comment(text: string): void {
    if (!this.closed) this.reply.raw.write(`: ${text}\n\n`);
  }

  private stopKeepAlive(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
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
    this.stopKeepAlive();
    if (this.closed) return;
    this.closed = true;
    this.reply.raw.end();
  }
}
