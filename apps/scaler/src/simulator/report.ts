import type { SimulationResult } from './simulate';

/** The figures a run reports, in the order of `--json`. */
export interface RunFigures {
  strategy: string;
  /** The trace file's base name. */
  trace: string;
  requests: number;
  sloViolationPct: number;
  p95QueueWaitS: number;
  p99QueueWaitS: number;
  replicaMinutes: number;
  scaleEvents: number;
}

const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

/** The figures of a run, rounded to what a reader can use (microsecond waits, 1/100 replica-minute). */
export function runFigures(strategy: string, trace: string, r: SimulationResult): RunFigures {
  return {
    strategy,
    trace,
    requests: r.requests,
    sloViolationPct: round(r.sloViolationPct, 4),
    p95QueueWaitS: round(r.p95QueueWaitS, 6),
    p99QueueWaitS: round(r.p99QueueWaitS, 6),
    replicaMinutes: round(r.replicaMinutes, 2),
    scaleEvents: r.scaleEvents,
  };
}

/** `--json`: one line, keys in the documented order. */
export function jsonLine(f: RunFigures): string {
  return JSON.stringify({
    strategy: f.strategy,
    trace: f.trace,
    requests: f.requests,
    sloViolationPct: f.sloViolationPct,
    p95QueueWaitS: f.p95QueueWaitS,
    p99QueueWaitS: f.p99QueueWaitS,
    replicaMinutes: f.replicaMinutes,
    scaleEvents: f.scaleEvents,
  });
}

export type Cell = string | number;

/**
 * A plain-text table: a header, a rule, the rows. Columns of numbers are
 * right-aligned, others left-aligned, unless `align` says otherwise.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly Cell[])[], align?: readonly ('left' | 'right')[]): string {
  const text = (c: Cell): string => (typeof c === 'number' ? formatNumber(c) : c);
  const cells = rows.map((r) => r.map(text));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const right = header.map((_, i) => (align?.[i] ? align[i] === 'right' : rows.length > 0 && rows.every((r) => typeof r[i] === 'number')));
  const line = (vals: readonly string[]): string =>
    vals
      .map((v, i) => (right[i] ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** Integers as they are; other numbers to 3 significant decimals past the point, at most 2 for large values. */
export function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 100) return x.toFixed(1);
  if (abs >= 1) return x.toFixed(2);
  return x.toFixed(3);
}

/** The table row of one run (the CLI's output). */
export function runTable(f: RunFigures, scale: number, seed: number): string {
  return formatTable(
    ['trace', 'strategy', 'scale', 'seed', 'requests', 'slo_violation_%', 'p95_wait_s', 'p99_wait_s', 'replica_minutes', 'scale_events'],
    [[f.trace, f.strategy, scale.toPrecision(4), seed, f.requests, f.sloViolationPct.toFixed(3), f.p95QueueWaitS.toFixed(3), f.p99QueueWaitS.toFixed(3), f.replicaMinutes.toFixed(1), f.scaleEvents]],
    ['left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
  );
}
