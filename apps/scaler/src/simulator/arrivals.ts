import { RNG_STREAM, Rng } from './rng';
import type { Trace } from './trace';

/** Replicas the peak minute of a trace needs after `--scale auto`. */
export const AUTO_SCALE_PEAK_REPLICAS = 8;

/** The span a trace is replayed over: whole minutes, so that minute boundaries are epoch minutes. */
export interface TraceWindow {
  /** Epoch second the replay starts at (a whole minute). */
  startS: number;
  /** Epoch second it ends at (a whole minute, after every arrival). */
  endS: number;
}

export function traceWindow(trace: Trace): TraceWindow {
  if (trace.format === 'per-minute') return { startS: trace.startS, endS: trace.startS + 60 * trace.counts.length };
  const first = trace.times[0] ?? 0;
  const last = trace.times[trace.times.length - 1] ?? 0;
  // Copies of a request are jittered up to 1 s later; the window must hold them too.
  return { startS: Math.floor(first / 60) * 60, endS: Math.ceil((last + 1) / 60) * 60 };
}

/** The highest arrival rate (requests per second) over any whole epoch minute of the unscaled trace. */
export function peakMinuteRate(trace: Trace): number {
  if (trace.format === 'per-minute') {
    let peak = 0;
    for (const c of trace.counts) peak = Math.max(peak, c);
    return peak / 60;
  }
  let peak = 0;
  let minute = Number.NaN;
  let count = 0;
  for (const t of trace.times) {
    const m = Math.floor(t / 60);
    if (m !== minute) {
      minute = m;
      count = 0;
    }
    count++;
    peak = Math.max(peak, count);
  }
  return peak / 60;
}

/** The scale at which the trace's peak minute needs `peakReplicas` replicas of `replicaRps` requests per second each. */
export function autoScale(trace: Trace, replicaRps: number, peakReplicas = AUTO_SCALE_PEAK_REPLICAS): number {
  const peak = peakMinuteRate(trace);
  if (peak <= 0) throw new RangeError('the trace has no requests, so no scale makes its peak need replicas');
  return (peakReplicas * replicaRps) / peak;
}

/**
 * Arrival times (epoch seconds, ascending) of the trace at `scale`, drawn from
 * the seed's arrivals stream.
 *
 * Per-minute counts: each minute gets `count × scale` arrivals rounded
 * stochastically (floor, plus one with the fractional part as probability),
 * at uniform times within the minute. Per-request rows: scale < 1 keeps each
 * request with probability `scale`; scale ≥ 1 keeps it and adds
 * `floor(scale) − 1` copies plus one more with probability `frac(scale)`,
 * each copy up to 1 s after the original (uniform).
 */
export function generateArrivals(trace: Trace, scale: number, seed: number): Float64Array {
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale must be a positive number, got ${scale}`);
  const rng = new Rng(seed, RNG_STREAM.arrivals);
  const out = new GrowableTimes(trace.format === 'per-minute' ? 1024 : trace.times.length * Math.ceil(scale));
  if (trace.format === 'per-minute') {
    for (let m = 0; m < trace.counts.length; m++) {
      const x = (trace.counts[m] as number) * scale;
      const n = Math.floor(x) + (rng.bernoulli(x - Math.floor(x)) ? 1 : 0);
      const from = out.length;
      const minuteStart = trace.startS + 60 * m;
      for (let k = 0; k < n; k++) out.push(minuteStart + 60 * rng.next());
      out.sortTail(from);
    }
    return out.toArray();
  }
  const whole = Math.floor(scale);
  const frac = scale - whole;
  for (const t of trace.times) {
    if (scale < 1) {
      if (rng.bernoulli(scale)) out.push(t);
      continue;
    }
    out.push(t);
    for (let k = 1; k < whole; k++) out.push(t + rng.next());
    if (frac > 0 && rng.bernoulli(frac)) out.push(t + rng.next());
  }
  const times = out.toArray();
  times.sort();
  return times;
}

/** The arrivals that fall in [fromS, toS) of a sorted array. */
export function countInRange(times: Float64Array, fromS: number, toS: number): number {
  return lowerBound(times, toS) - lowerBound(times, fromS);
}

/** Index of the first element ≥ `x` in a sorted array. */
export function lowerBound(xs: Float64Array, x: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A Float64Array that doubles when full (millions of arrivals; a number[] would box and double the memory). */
class GrowableTimes {
  private buf: Float64Array;
  length = 0;

  constructor(capacity: number) {
    this.buf = new Float64Array(Math.max(16, capacity));
  }

  push(x: number): void {
    if (this.length === this.buf.length) {
      const bigger = new Float64Array(this.buf.length * 2);
      bigger.set(this.buf);
      this.buf = bigger;
    }
    this.buf[this.length++] = x;
  }

  /** Sorts the elements from `from` on in place (one minute's arrivals). */
  sortTail(from: number): void {
    if (this.length - from > 1) this.buf.subarray(from, this.length).sort();
  }

  toArray(): Float64Array {
    return this.buf.slice(0, this.length);
  }
}
