import type { Sample, ScalingParams } from '../types';

/**
 * Window queries over a history of samples, measured by time (`t`), not by
 * count, so that missing seconds do not bend the rates. Strategies read the
 * recent end of the history far more than the rest, so the sums they need are
 * built from the newest sample backwards, only as far as a query reaches.
 */
export class HistoryWindows {
  /** Queued jobs × seconds held, summed from the newest sample back: `tail[r]` covers samples newer than `last - r`. */
  private readonly tail: number[] = [0];
  private readonly last: number;

  constructor(readonly samples: readonly Sample[]) {
    this.last = samples.length - 1;
  }

  get length(): number {
    return this.samples.length;
  }

  sample(i: number): Sample {
    const s = this.samples[i];
    if (!s) throw new RangeError(`no sample ${i} of ${this.samples.length}`);
    return s;
  }

  /** Epoch second of sample `i`. */
  timeOf(i: number): number {
    return this.sample(i).t;
  }

  /** Index of the latest sample at or before `t`, or -1. */
  indexAt(t: number): number {
    let lo = 0;
    let hi = this.last;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.samples[mid] as Sample).t <= t) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** Index of the sample that starts a window of `seconds` ending at sample `i` (the earliest one when history is shorter). */
  startOf(i: number, seconds: number): number {
    const target = this.timeOf(i) - seconds;
    // Samples are one a second unless the scaler missed some: try the index that holds when none is missing.
    const guess = i - seconds;
    if (guess >= 0 && (this.samples[guess] as Sample).t === target) return guess;
    const j = this.indexAt(target);
    return j < 0 ? 0 : j;
  }

  /** Arrivals per second over the `seconds` before sample `i` (0 when the history has no span yet). */
  arrivalRate(i: number, seconds: number): number {
    // The hot path of every strategy: read the samples directly, and try the no-gap index before searching.
    const a = this.samples[i] as Sample;
    const guess = i - seconds;
    const near = guess >= 0 ? this.samples[guess] : undefined;
    const b = near !== undefined && near.t === a.t - seconds ? near : (this.samples[this.startOf(i, seconds)] as Sample);
    const span = a.t - b.t;
    if (span <= 0) return 0;
    return Math.max(0, a.arrivals - b.arrivals) / span;
  }

  /** Time-weighted mean of the queued jobs over the `seconds` before sample `i` (the sample itself when there is no span). */
  meanQueued(i: number, seconds: number): number {
    const j = this.startOf(i, seconds);
    const span = this.timeOf(i) - this.timeOf(j);
    if (span <= 0) return this.sample(i).queued;
    return (this.tailArea(j) - this.tailArea(i)) / span;
  }

  /** Queued × seconds of every sample after `i` (each weighted by the time since the one before it). */
  private tailArea(i: number): number {
    const r = this.last - i;
    for (let k = this.tail.length; k <= r; k++) {
      const newer = this.samples[this.last - k + 1] as Sample;
      const older = this.samples[this.last - k] as Sample;
      this.tail.push((this.tail[k - 1] as number) + newer.queued * (newer.t - older.t));
    }
    return this.tail[r] as number;
  }
}

/**
 * Replicas a load needs, in replica units (fractional): the arrival rate at the
 * replicas' capacity, plus what drains `queued` jobs within `drainSeconds`.
 */
export function replicasFor(ratePerSecond: number, queued: number, p: ScalingParams, drainSeconds = p.targetQueueWaitSeconds): number {
  const mu = p.replicaCapacity;
  return ratePerSecond / mu + queued / (mu * Math.max(drainSeconds, 1e-9));
}

/**
 * Replicas to run for an offered load of `load` replica units: the load plus
 * square-root headroom (Halfin-Whitt staffing). Random arrivals and service
 * times make a queue at 100 % utilisation grow without bound; the spare
 * capacity that keeps waits short grows with the square root of the load, so
 * the same β holds at 2 replicas and at 200 (a fixed utilisation target would
 * either waste large pools or starve small ones).
 */
export function withHeadroom(load: number, beta: number): number {
  if (load <= 0) return 0;
  return load + beta * Math.sqrt(load);
}

/** `x` rounded up to whole replicas, ignoring floating-point dust (2.0000000001 is 2). */
export function wholeReplicas(x: number): number {
  return Math.max(0, Math.ceil(x - 1e-9));
}

/** Clamped to the ScaledObject's bounds. */
export function clampReplicas(n: number, p: ScalingParams): number {
  return Math.min(p.maxReplicas, Math.max(p.minReplicas, n));
}
