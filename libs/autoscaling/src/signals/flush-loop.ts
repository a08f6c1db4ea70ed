/**
 * Runs a flush every `everyMs` and on demand, never two at once: a flush takes what was counted, so two
 * overlapping ones could not both see it, and a slow Redis must not pile flushes up. The timer is
 * `unref()`ed (it never keeps a process alive) and skips its tick while a flush is still in flight.
 */
export class FlushLoop<T> {
  private chain: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly flushOnce: () => Promise<T>,
    private readonly everyMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.inFlight === 0) void this.flush().catch(() => undefined);
    }, this.everyMs);
    this.timer.unref();
  }

  /** One flush, after any flush in progress. */
  flush(): Promise<T> {
    this.inFlight += 1;
    const next = this.chain.then(() => this.flushOnce()).finally(() => (this.inFlight -= 1));
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Stops the timer and flushes what is left, waiting at most `timeoutMs` (a Redis that does not answer
   * must not hold a shutdown). Resolves whether that flush settled in time.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
    });
    try {
      return await Promise.race([this.flush().then(() => true, () => true), late]);
    } finally {
      clearTimeout(timer);
    }
  }
}
