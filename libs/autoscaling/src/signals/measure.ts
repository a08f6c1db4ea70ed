import type { Measured } from '../params';
import type { RecordedSample } from './layout';

/** Capacity is measured over this much of the recorded history. */
export const CAPACITY_WINDOW_SECONDS = 600;
/** Below this much busy (or saturated) worker time in the window, a measurement is noise: the prior applies. */
export const MIN_MEASURED_WORK_MS = 20_000;
/** The measured start-up time is this percentile of the recent start-ups: plan for a slow one, not the mean. */
export const STARTUP_PERCENTILE = 0.9;

/**
 * Jobs per second one worker completes while all its slots are busy, from the
 * `work` totals the workers publish, over the last CAPACITY_WINDOW_SECONDS of
 * `history` (oldest first). Saturated time measures capacity itself; busy time
 * (at least one job running) gives a lower bound when the workers were never
 * saturated long enough. Null until either has MIN_MEASURED_WORK_MS.
 */
export function measuredCapacity(history: readonly RecordedSample[]): number | null {
  const last = history.at(-1);
  if (!last) return null;
  const first = history.find((s) => s.t >= last.t - CAPACITY_WINDOW_SECONDS);
  if (!first || first === last) return null;
  const rate = (doneDelta: number, msDelta: number): number | null =>
    msDelta >= MIN_MEASURED_WORK_MS && doneDelta >= 0 ? doneDelta / (msDelta / 1000) : null;
  return rate(last.satDone - first.satDone, last.satMs - first.satMs) ?? rate(last.busyDone - first.busyDone, last.busyMs - first.busyMs);
}

/** The STARTUP_PERCENTILE (nearest rank) of the recorded start-up times in seconds; null when none was recorded. */
export function measuredStartup(startupSeconds: readonly number[]): number | null {
  const xs = startupSeconds.filter((x) => Number.isFinite(x) && x >= 0).sort((a, b) => a - b);
  if (xs.length === 0) return null;
  return xs[Math.max(0, Math.ceil(STARTUP_PERCENTILE * xs.length) - 1)] ?? null;
}

/** What `resolveParams` takes for `measured` settings. */
export function measure(history: readonly RecordedSample[], startupSeconds: readonly number[]): Measured {
  return { replicaCapacity: measuredCapacity(history), startupSeconds: measuredStartup(startupSeconds) };
}
