import { describe, expect, it } from 'vitest';
import { SampleRing } from './sample-ring';

const record = (ring: SampleRing, t: number) => ring.record(t, t * 2, t, 0, 0, 1, 0);

describe('sample ring', () => {
  it('hands out the last samples oldest first, before and after it wraps', () => {
    const ring = new SampleRing(5);
    for (let t = 0; t < 3; t++) record(ring, t);
    expect(ring.all().map((s) => s.t)).toEqual([0, 1, 2]);
    for (let t = 3; t < 12; t++) record(ring, t);
    expect(ring.all().map((s) => s.t)).toEqual([7, 8, 9, 10, 11]);
    expect(ring.last(2).map((s) => s.t)).toEqual([10, 11]);
    expect(ring.last(9).map((s) => s.t)).toEqual([7, 8, 9, 10, 11]);
    expect(ring.at(0)?.arrivals).toBe(22);
    expect(ring.at(4)?.t).toBe(7);
    expect(ring.at(5)).toBeUndefined();
  });

  it('reuses one array for the full history instead of copying a new one per call', () => {
    const ring = new SampleRing(900);
    for (let t = 0; t < 1_000; t++) record(ring, t);
    const first = ring.all();
    record(ring, 1_000);
    expect(ring.all()).toBe(first);
    expect(first.length).toBe(900);
    expect(first[899]?.t).toBe(1_000);
  });
});
