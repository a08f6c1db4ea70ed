/** Number formatting and histogram arithmetic for the console. */

export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

export function rate(perSecond: number): string {
  return perSecond >= 10 ? perSecond.toFixed(0) : perSecond.toFixed(perSecond >= 1 ? 1 : 2);
}

export function clock(epochMs: number): string {
  return new Date(epochMs).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/**
 * The q-quantile of a histogram (per-bucket counts, the last one above the
 * last boundary), interpolated inside its bucket as Prometheus'
 * histogram_quantile does; null without observations.
 */
export function quantile(q: number, boundaries: readonly number[], counts: readonly number[]): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total <= 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] ?? 0;
    if (seen + c >= rank && c > 0) {
      const lower = i === 0 ? 0 : (boundaries[i - 1] ?? 0);
      const upper = boundaries[i];
      // Above the last boundary there is no upper edge: report the edge itself.
      if (upper === undefined) return lower;
      return lower + (upper - lower) * ((rank - seen) / c);
    }
    seen += c;
  }
  return boundaries.at(-1) ?? null;
}

/** Element-wise difference of two cumulative bucket arrays (a counter reset gives the newer counts). */
export function delta(now: readonly number[], before: readonly number[]): number[] {
  if (now.length !== before.length) return [...now];
  const d = now.map((v, i) => v - (before[i] ?? 0));
  return d.some((v) => v < 0) ? [...now] : d;
}
