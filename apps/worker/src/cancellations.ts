import type { Redis } from 'ioredis';

/**
 * Jobs running in this process, by id, with the controller that stops them.
 * Cancellations are broadcast to every worker; the one running the job aborts it.
 */
export class Cancellations {
  private readonly running = new Map<string, AbortController>();

  constructor(
    private readonly sub: Redis,
    private readonly channel: string,
  ) {
    sub.on('message', (ch: string, jobId: string) => {
      if (ch === this.channel) this.running.get(jobId)?.abort();
    });
  }

  async start(): Promise<void> {
    await this.sub.subscribe(this.channel);
  }

  track(jobId: string): AbortSignal {
    const c = new AbortController();
    this.running.set(jobId, c);
    return c.signal;
  }

  release(jobId: string): void {
    this.running.delete(jobId);
  }
}
