/**
 * A binary min-heap of (time, pod) pairs: the pending service completions.
 * Typed arrays rather than objects, since millions of jobs pass through it.
 */
export class CompletionHeap {
  private times = new Float64Array(256);
  private pods = new Int32Array(256);
  size = 0;

  /** Time of the earliest completion, or +Infinity when none is pending. */
  peekTime(): number {
    return this.size > 0 ? (this.times[0] as number) : Number.POSITIVE_INFINITY;
  }

  /** Pod of the earliest completion (only when `size > 0`). */
  peekPod(): number {
    return this.pods[0] as number;
  }

  push(time: number, pod: number): void {
    if (this.size === this.times.length) this.grow();
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const pt = this.times[parent] as number;
      if (pt <= time) break;
      this.times[i] = pt;
      this.pods[i] = this.pods[parent] as number;
      i = parent;
    }
    this.times[i] = time;
    this.pods[i] = pod;
  }

  /** Removes the earliest completion. */
  pop(): void {
    const n = --this.size;
    if (n <= 0) return;
    const time = this.times[n] as number;
    const pod = this.pods[n] as number;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && (this.times[r] as number) < (this.times[l] as number) ? r : l;
      if ((this.times[c] as number) >= time) break;
      this.times[i] = this.times[c] as number;
      this.pods[i] = this.pods[c] as number;
      i = c;
    }
    this.times[i] = time;
    this.pods[i] = pod;
  }

  private grow(): void {
    const times = new Float64Array(this.times.length * 2);
    times.set(this.times);
    const pods = new Int32Array(this.pods.length * 2);
    pods.set(this.pods);
    this.times = times;
    this.pods = pods;
  }
}
