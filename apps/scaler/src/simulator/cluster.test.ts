import { describe, expect, it } from 'vitest';
import { Cluster } from './cluster';

const cluster = (arrivals: number[], initialReady: number, seed = 1) =>
  new Cluster({ arrivals: Float64Array.from(arrivals), startS: 0, replicaRps: 1, startupS: 90, initialReady, seed });

describe('queue and service', () => {
  it('builds a queue on one replica at 1 job/s when 120 jobs arrive in a minute: waits pass 10 s and the last waits about a minute', () => {
    const c = cluster(
      Array.from({ length: 120 }, (_, i) => i * 0.5),
      1,
    );
    c.advanceTo(1_000);
    expect(c.completions).toBe(120);
    expect(c.active).toBe(0);
    expect(c.waits[0]).toBe(0);
    expect(Array.from(c.waits).filter((w) => w > 10).length).toBeGreaterThan(60);
    expect(c.waits[119]).toBeGreaterThan(30);
    expect(c.waits[119]).toBeLessThan(100);
  });

  it('serves first in, first out: service starts never go back in time', () => {
    const arrivals = Array.from({ length: 200 }, (_, i) => i * 0.3);
    const c = cluster(arrivals, 2);
    c.advanceTo(10_000);
    const starts = arrivals.map((a, i) => a + (c.waits[i] as number));
    expect(starts.every((s, i) => i === 0 || (starts[i - 1] as number) <= s)).toBe(true);
  });

  it('reports the jobs waiting and in service at an instant', () => {
    const c = cluster([1, 1.1, 1.2, 1.3], 2);
    c.advanceTo(1.3);
    expect([c.arrived, c.active, c.queued]).toEqual([4, 2, 2]);
  });

  it('counts a job still waiting at the end with its wait so far', () => {
    const c = cluster([10], 0);
    c.advanceTo(60);
    c.finish(60);
    expect(Array.from(c.waits)).toEqual([50]);
  });
});

describe('pods', () => {
  it('makes new pods ready after uniform [0.9, 1.1] × the start-up time', () => {
    const c = cluster([], 0);
    c.scaleTo(20, 0);
    c.advanceTo(80.99);
    expect([c.loading, c.ready]).toEqual([20, 0]);
    c.advanceTo(99.01);
    expect([c.loading, c.ready]).toEqual([0, 20]);
  });

  it('removes starting pods first (newest first), then idle ready pods, then lets busy ones drain', () => {
    const c = cluster([5], 3);
    c.advanceTo(5);
    expect([c.ready, c.active]).toEqual([3, 1]);
    c.scaleTo(5, 5);
    expect([c.replicas, c.loading, c.pods]).toEqual([5, 2, 5]);
    c.scaleTo(1, 5);
    // Two starting pods and two idle ones went; the busy one stays ready.
    expect([c.replicas, c.loading, c.ready, c.pods, c.active]).toEqual([1, 0, 1, 1, 1]);
    c.scaleTo(0, 5);
    // The busy pod takes no new job but still exists until its job is done.
    expect([c.replicas, c.ready, c.pods, c.active]).toEqual([0, 0, 1, 1]);
    c.advanceTo(1_000);
    expect([c.pods, c.completions]).toEqual([0, 1]);
  });

  it('integrates replica-minutes over every pod that exists: starting, ready and draining', () => {
    const c = cluster([], 2);
    c.scaleTo(3, 60);
    c.scaleTo(0, 120);
    // 2 pods for 60 s, 3 for 60 s, then none.
    expect(c.podSecondsUntil(600)).toBe(2 * 60 + 3 * 60);
  });

  it('draws the same service times for the same seed and different ones for another', () => {
    const arrivals = Array.from({ length: 50 }, (_, i) => i);
    const run = (seed: number) => {
      const c = cluster(arrivals, 1, seed);
      c.advanceTo(1_000);
      return Array.from(c.waits);
    };
    expect(run(4)).toEqual(run(4));
    expect(run(5)).not.toEqual(run(4));
  });
});
