/** How a batch is fed and how its end is projected: pure, so the arithmetic is tested alone. */

export interface PaceSettings {
  /** Fewest requests kept waiting for a worker. */
  minQueued: number;
  /** Seconds of work at the needed pace kept waiting. */
  lookaheadS: number;
  /** Most requests in flight. */
  maxInFlight: number;
}

/**
 * Requests a batch keeps waiting for a worker: enough for `lookaheadS` seconds at the pace that ends the
 * remaining requests by the window's end (so a short window shows its whole demand to the autoscaler), at
 * least `minQueued` (so the batch always has work in its tenant's fair share), at most `maxInFlight`.
 */
export function queuedTarget(left: number, msToWindowEnd: number, s: PaceSettings): number {
  const pace = left / Math.max(1, msToWindowEnd / 1000);
  return Math.min(Math.max(Math.ceil(pace * s.lookaheadS), s.minQueued), s.maxInFlight);
}

/** When the batch ends if it keeps the pace it had since it started; null before anything ended. */
export function projectedEnd(total: number, done: number, startedAt: number, now: number): number | null {
  if (done <= 0 || now <= startedAt) return null;
  return now + ((total - done) * (now - startedAt)) / done;
}
