interface Pending<I, O> {
  item: I;
  resolve: (v: O) => void;
  reject: (e: unknown) => void;
}

/**
 * Gathers the items submitted while the event loop is in one phase (requests
 * that arrived together) and hands them to `run` as one batch when the phase
 * ends, at most `max` per batch. `run` answers each item in order: a value,
 * or an `Error` that is that item's alone; if `run` throws, every item of its
 * batch fails with that error. `single` handles a batch of one (no batching
 * cost when traffic is light).
 */
export class TickBatch<I, O> {
  private pending: Pending<I, O>[] = [];

  constructor(
    private readonly run: (items: I[]) => Promise<(O | Error)[]>,
    private readonly single: (item: I) => Promise<O>,
    private readonly max = 64,
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ item, resolve, reject });
    });
  }

  private flush(): void {
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += this.max) void this.send(all.slice(i, i + this.max));
  }

  private async send(batch: Pending<I, O>[]): Promise<void> {
    const [only] = batch;
    if (batch.length === 1 && only) {
      await this.single(only.item).then(only.resolve, only.reject);
      return;
    }
    let out: (O | Error)[];
    try {
      out = await this.run(batch.map((p) => p.item));
    } catch (e) {
      for (const p of batch) p.reject(e);
      return;
    }
    batch.forEach((p, i) => {
      const r = out[i];
      if (r === undefined) p.reject(new Error(`a batch of ${batch.length} answered ${out.length} items`));
      else if (r instanceof Error) p.reject(r);
      else p.resolve(r);
    });
  }
}
