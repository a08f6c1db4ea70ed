/** The figures a run is judged by. */
export interface WaitSummary {
  /** Jobs in the run. */
  requests: number;
  /** Percent of jobs that waited longer than the SLO (0 when there are no jobs). */
  sloViolationPct: number;
  /** 95th percentile of the queue wait, seconds (nearest rank; 0 when there are no jobs). */
  p95QueueWaitS: number;
  /** 99th percentile of the queue wait, seconds. */
  p99QueueWaitS: number;
}

/** Nearest-rank percentile `p` (0–100] of an ascending array; NaN when empty. */
export function percentileSorted(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** Summarises queue waits against an SLO of `sloS` seconds (a wait equal to the SLO meets it). */
export function summariseWaits(waits: Float64Array, sloS: number): WaitSummary {
  const n = waits.length;
  if (n === 0) return { requests: 0, sloViolationPct: 0, p95QueueWaitS: 0, p99QueueWaitS: 0 };
  const sorted = waits.slice().sort();
  // Index of the first wait above the SLO.
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= sloS) lo = mid + 1;
    else hi = mid;
  }
  return {
    requests: n,
    sloViolationPct: (100 * (n - lo)) / n,
    p95QueueWaitS: percentileSorted(sorted, 95),
    p99QueueWaitS: percentileSorted(sorted, 99),
  };
}
