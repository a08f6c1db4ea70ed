import { describe, expect, it } from 'vitest';
import { renderPlot } from './plot-svg';
import { MAX_BUCKETS, TimelineRecorder, bucketSecondsFor, type Timeline } from './timeline';

const meta = { trace: 'nasa.csv', strategy: 'predictive', scale: 1.1736, seed: 7, replicaRps: 1, startupS: 90, sloS: 10 };

function timeline(buckets: number, bucketSeconds: number, wait: (b: number) => number): Timeline {
  return {
    startS: Date.UTC(1995, 6, 1) / 1000,
    bucketSeconds,
    arrivalsPerS: Float64Array.from({ length: buckets }, (_, b) => 1 + Math.sin(b / 10)),
    ready: Float64Array.from({ length: buckets }, (_, b) => 2 + (b % 5)),
    pods: Float64Array.from({ length: buckets }, (_, b) => 3 + (b % 5)),
    p95WaitS: Float64Array.from({ length: buckets }, (_, b) => wait(b)),
  };
}

describe('plot buckets', () => {
  it('fits 58.6 days into at most 1,500 hour-long buckets and an hour into 5 s buckets', () => {
    expect(bucketSecondsFor(84_333 * 60)).toBe(3_600);
    expect(Math.ceil((84_333 * 60) / bucketSecondsFor(84_333 * 60))).toBeLessThanOrEqual(MAX_BUCKETS);
    expect(bucketSecondsFor(3_600)).toBe(5);
  });

  it('averages per-second levels per bucket and takes the p95 wait of the jobs arriving in it', () => {
    const rec = new TimelineRecorder(0, 20, 10);
    for (let t = 0; t < 20; t++) rec.addSecond(t, t < 10 ? 1 : 3, 4);
    const waits = Float64Array.from({ length: 20 }, (_, i) => i);
    const tl = rec.finish(Float64Array.from({ length: 20 }, (_, i) => (i < 5 ? i : 10 + i / 10)), waits);
    expect(Array.from(tl.ready)).toEqual([1, 3]);
    expect(Array.from(tl.pods)).toEqual([4, 4]);
    expect(Array.from(tl.arrivalsPerS)).toEqual([0.5, 1.5]);
    expect(Array.from(tl.p95WaitS)).toEqual([4, 19]);
  });
});

describe('SVG plot', () => {
  it('titles the run with trace, strategy, scale and seed, and labels three panels with units over one time axis in hours', () => {
    const svg = renderPlot(timeline(1_406, 3_600, () => 2), meta);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('nasa.csv — strategy predictive — scale ×1.1736 — seed 7');
    for (const title of ['arrivals (requests/s)', 'replicas (pods)', 'p95 queue wait (s)', 'time since 1995-07-01 00:00 UTC (hours)']) expect(svg).toContain(title);
    for (const legend of ['arrivals, mean per bucket', 'ready pods, mean', 'all pods (incl. starting,', 'SLO 10 s']) expect(svg).toContain(legend);
    expect(svg.match(/<rect x="90"/g)?.length).toBe(3);
    expect(svg).toContain('>168</text>');
  });

  it('draws the SLO as a dashed line and switches the wait axis to log when waits span decades', () => {
    const svg = renderPlot(timeline(60, 60, (b) => (b < 30 ? 0.5 : 800)), meta);
    expect(svg).toMatch(/<line [^>]*stroke-dasharray="8 5"/);
    expect(svg).toContain('p95 queue wait (s, log)');
    expect(svg).toContain('(minutes)');
  });

  it('breaks the wait line where a bucket had no jobs', () => {
    const svg = renderPlot(timeline(100, 60, (b) => (b % 50 === 10 ? Number.NaN : 3)), meta);
    const waitLines = svg.match(/<polyline fill="none" stroke="#d62728"/g) ?? [];
    expect(waitLines.length).toBe(3);
    expect(svg).not.toContain('NaN');
  });
});
