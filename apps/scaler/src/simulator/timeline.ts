import { lowerBound } from './arrivals';
import { percentileSorted } from './stats';

/** At most this many buckets are plotted: about one per pixel column. */
export const MAX_BUCKETS = 1_500;

/** Bucket widths a reader can name (seconds), smallest first. */
const NICE_BUCKET_SECONDS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400];

/** The narrowest nice bucket width that fits `durationS` into at most `MAX_BUCKETS` buckets. */
export function bucketSecondsFor(durationS: number, maxBuckets = MAX_BUCKETS): number {
  for (const b of NICE_BUCKET_SECONDS) if (durationS / b <= maxBuckets) return b;
  return Math.ceil(durationS / maxBuckets / 86_400) * 86_400;
}

/** What the plot shows per bucket of time. */
export interface Timeline {
  /** Epoch second of the first bucket's start. */
  startS: number;
  bucketSeconds: number;
  /** Mean arrivals per second in each bucket. */
  arrivalsPerS: Float64Array;
  /** Mean ready pods (not being removed) in each bucket, sampled each second. */
  ready: Float64Array;
  /** Mean pods that exist (starting, ready or draining) in each bucket, sampled each second. */
  pods: Float64Array;
  /** 95th percentile queue wait of the jobs that arrived in each bucket, seconds; NaN where none arrived. */
  p95WaitS: Float64Array;
}

/** Collects the per-second levels during a run; the per-job figures are added at the end. */
export class TimelineRecorder {
  private readonly n: number;
  private readonly readySum: Float64Array;
  private readonly podsSum: Float64Array;
  private readonly seconds: Float64Array;

  constructor(
    private readonly startS: number,
    private readonly endS: number,
    readonly bucketSeconds: number,
  ) {
    this.n = Math.max(1, Math.ceil((endS - startS) / bucketSeconds));
    this.readySum = new Float64Array(this.n);
    this.podsSum = new Float64Array(this.n);
    this.seconds = new Float64Array(this.n);
  }

  /** The levels at whole second `t`. */
  addSecond(t: number, ready: number, pods: number): void {
    const b = Math.floor((t - this.startS) / this.bucketSeconds);
    this.readySum[b] = (this.readySum[b] as number) + ready;
    this.podsSum[b] = (this.podsSum[b] as number) + pods;
    this.seconds[b] = (this.seconds[b] as number) + 1;
  }

  /** The timeline, with arrival rates and p95 waits from the jobs (`arrivals` ascending, `waits` by job). */
  finish(arrivals: Float64Array, waits: Float64Array): Timeline {
    const arrivalsPerS = new Float64Array(this.n);
    const p95WaitS = new Float64Array(this.n).fill(Number.NaN);
    for (let b = 0; b < this.n; b++) {
      const from = this.startS + b * this.bucketSeconds;
      const to = Math.min(this.endS, from + this.bucketSeconds);
      const i = lowerBound(arrivals, from);
      const j = lowerBound(arrivals, to);
      arrivalsPerS[b] = (j - i) / (to - from);
      // Jobs are numbered by arrival, so a bucket's jobs are one slice of the waits.
      if (j > i) p95WaitS[b] = percentileSorted(waits.slice(i, j).sort(), 95);
    }
    const mean = (sum: Float64Array): Float64Array => sum.map((s, b) => ((this.seconds[b] as number) > 0 ? s / (this.seconds[b] as number) : 0));
    return { startS: this.startS, bucketSeconds: this.bucketSeconds, arrivalsPerS, ready: mean(this.readySum), pods: mean(this.podsSum), p95WaitS };
  }
}
