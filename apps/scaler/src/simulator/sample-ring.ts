import type { Sample } from '@fastvlm/autoscaling';

/**
 * The last `capacity` per-second samples, kept without copying: a ring of
 * reused Sample objects. Strategies want an array oldest first; it is filled
 * (references only) into one reused array when a strategy is called, which
 * is every 15 s, not every second.
 *
 * The arrays handed out are valid until the next `record`: the objects in
 * them are overwritten as the ring turns.
 */
export class SampleRing {
  private readonly ring: Sample[];
  private head = -1;
  private count = 0;
  private readonly view: Sample[] = [];
  private readonly tailView: Sample[] = [];

  constructor(readonly capacity: number) {
    this.ring = Array.from({ length: capacity }, () => ({ t: 0, arrivals: 0, completions: 0, queued: 0, active: 0, ready: 0, loading: 0 }));
  }

  get length(): number {
    return this.count;
  }

  /** Records the sample of second `t`; returns the (reused) object holding it. */
  record(t: number, arrivals: number, completions: number, queued: number, active: number, ready: number, loading: number): Sample {
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    if (this.count < this.capacity) this.count++;
    const s = this.ring[this.head] as Sample;
    s.t = t;
    s.arrivals = arrivals;
    s.completions = completions;
    s.queued = queued;
    s.active = active;
    s.ready = ready;
    s.loading = loading;
    return s;
  }

  /** The sample `ago` seconds back (0: the last), or undefined. */
  at(ago: number): Sample | undefined {
    if (ago >= this.count) return undefined;
    const i = this.head - ago;
    return this.ring[i < 0 ? i + this.capacity : i];
  }

  /** Every sample held, oldest first. */
  all(): readonly Sample[] {
    return this.fill(this.view, this.count);
  }

  /** The last `n` samples (fewer while the ring is filling), oldest first; a separate array from `all()`. */
  last(n: number): readonly Sample[] {
    return this.fill(this.tailView, Math.min(n, this.count));
  }

  private fill(out: Sample[], n: number): Sample[] {
    if (out.length !== n) out.length = n;
    const ring = this.ring;
    const cap = this.capacity;
    let i = this.head - n + 1;
    if (i < 0) i += cap;
    for (let k = 0; k < n; k++) {
      out[k] = ring[i] as Sample;
      i = i + 1 === cap ? 0 : i + 1;
    }
    return out;
  }
}
