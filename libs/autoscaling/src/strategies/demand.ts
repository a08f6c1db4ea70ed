import type { Sample, ScalingParams } from '../types';

/**
 * Window queries over a history of samples, measured by time (`t`), not by
 * count, so that missing seconds do not bend the rates. Built once per
 * decision in O(n); each query costs O(log n).
 */
export class HistoryWindows {
  /** Prefix sums of `queued` × seconds it held, so that averages weigh each sample by the time it covers. */
  private readonly queuedArea: Float64Array;

  constructor(readonly samples: readonly Sample[]) {
    const n = samples.length;
    this.queuedArea = new Float64Array(n);
    for (let i = 1; i < n; i++) {
      const a = samples[i - 1] as Sample;
      const b = samples[i] as Sample;
      this.queuedArea[i] = (this.queuedArea[i - 1] as number) + b.queued * (b.t - a.t);
    }
  }

  get length(): number {
    return this.samples.length;
  }

  sample(i: number): Sample {
    const s = this.samples[i];
    if (!s) throw new RangeError(`no sample ${i} of ${this.samples.length}`);
    return s;
  }

  /** Index of the latest sample at or before `t`, or -1. */
  indexAt(t: number): number {
    let lo = 0;
    let hi = this.samples.length - 1;
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
  private startOf(i: number, seconds: number): number {
    const j = this.indexAt(this.sample(i).t - seconds);
    return j < 0 ? 0 : j;
  }

  /** Arrivals per second over the `seconds` before sample `i` (0 when the history has no span yet). */
  arrivalRate(i: number, seconds: number): number {
    const j = this.startOf(i, seconds);
    const span = this.sample(i).t - this.sample(j).t;
    if (span <= 0) return 0;
    return Math.max(0, this.sample(i).arrivals - this.sample(j).arrivals) / span;
  }

  /** Time-weighted mean of the queued jobs over the `seconds` before sample `i` (the sample itself when there is no span). */
  meanQueued(i: number, seconds: number): number {
    const j = this.startOf(i, seconds);
    const span = this.sample(i).t - this.sample(j).t;
    if (span <= 0) return this.sample(i).queued;
    return ((this.queuedArea[i] as number) - (this.queuedArea[j] as number)) / span;
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
