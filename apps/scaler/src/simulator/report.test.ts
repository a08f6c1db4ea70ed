import { describe, expect, it } from 'vitest';
import { formatTable, jsonLine, runFigures } from './report';
import type { SimulationResult } from './simulate';
import { percentileSorted, summariseWaits } from './stats';

describe('wait figures', () => {
  it('takes nearest-rank percentiles: of 1..100, p95 is 95 and p99 is 99', () => {
    const waits = Float64Array.from({ length: 100 }, (_, i) => 100 - i);
    const s = summariseWaits(waits, 10);
    expect([s.p95QueueWaitS, s.p99QueueWaitS]).toEqual([95, 99]);
    expect(percentileSorted(Float64Array.from([1, 2, 3]), 50)).toBe(2);
  });

  it('counts waits above the SLO as violations, a wait of exactly the SLO meeting it', () => {
    expect(summariseWaits(Float64Array.from([0, 10, 10.0001, 20]), 10).sloViolationPct).toBe(50);
  });

  it('reports zeros for a run without jobs', () => {
    expect(summariseWaits(new Float64Array(0), 10)).toEqual({ requests: 0, sloViolationPct: 0, p95QueueWaitS: 0, p99QueueWaitS: 0 });
  });
});

describe('output', () => {
  const result = { requests: 12, sloViolationPct: 8.333333333, p95QueueWaitS: 12.3456789, p99QueueWaitS: 20.5, replicaMinutes: 42.123, scaleEvents: 3 } as SimulationResult;

  it('prints --json with exactly the documented keys in order', () => {
    const line = jsonLine(runFigures('adaptive', 'tiny.csv', result));
    expect(line).not.toContain('\n');
    expect(Object.keys(JSON.parse(line) as object)).toEqual(['strategy', 'trace', 'requests', 'sloViolationPct', 'p95QueueWaitS', 'p99QueueWaitS', 'replicaMinutes', 'scaleEvents']);
    expect(JSON.parse(line)).toEqual({
      strategy: 'adaptive',
      trace: 'tiny.csv',
      requests: 12,
      sloViolationPct: 8.3333,
      p95QueueWaitS: 12.345679,
      p99QueueWaitS: 20.5,
      replicaMinutes: 42.12,
      scaleEvents: 3,
    });
  });

  it('aligns a table: text left, numbers right, one rule under the header', () => {
    expect(formatTable(['name', 'n'], [['a', 1.5], ['bbb', 10]])).toBe(['name     n', '----  ----', 'a     1.50', 'bbb     10'].join('\n'));
  });

  it('right-aligns preformatted columns when told to', () => {
    expect(formatTable(['name', 'ratio'], [['a', '0.500'], ['b', '12.000']], ['left', 'right'])).toBe(['name   ratio', '----  ------', 'a      0.500', 'b     12.000'].join('\n'));
  });
});
