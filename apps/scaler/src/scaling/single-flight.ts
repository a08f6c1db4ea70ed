/**
 * At most one run per key at a time. A caller content with a run already under
 * way joins it; a caller that needs a run started after now (something changed
 * since it began) gets the next one, which all such callers share. Bounds the
 * work that bursts of queue events and gRPC calls cause to one run after another.
 */
export class SingleFlight<T> {
  private readonly running = new Map<string, Promise<T>>();
  private readonly next = new Map<string, Promise<T>>();

  run(key: string, fresh: boolean, fn: () => Promise<T>): Promise<T> {
    const current = this.running.get(key);
    if (!current) return this.start(key, fn);
    if (!fresh) return current;
    let queued = this.next.get(key);
    if (!queued) {
      queued = current
        .catch(() => undefined)
        .then(() => {
          this.next.delete(key);
          return this.start(key, fn);
        });
      this.next.set(key, queued);
    }
    return queued;
  }

  private start(key: string, fn: () => Promise<T>): Promise<T> {
    const p = fn().finally(() => {
      if (this.running.get(key) === p) this.running.delete(key);
    });
    this.running.set(key, p);
    return p;
  }
}
