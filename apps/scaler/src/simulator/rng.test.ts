import { describe, expect, it } from 'vitest';
import { RNG_STREAM, Rng } from './rng';

const draw = (rng: Rng, n: number): number[] => Array.from({ length: n }, () => rng.next());

describe('seeded PRNG', () => {
  it('gives the same sequence for the same seed and stream', () => {
    expect(draw(new Rng(42, RNG_STREAM.service), 1000)).toEqual(draw(new Rng(42, RNG_STREAM.service), 1000));
  });

  it('gives different sequences for different seeds and for different streams of one seed', () => {
    const a = draw(new Rng(1, RNG_STREAM.arrivals), 20);
    expect(draw(new Rng(2, RNG_STREAM.arrivals), 20)).not.toEqual(a);
    expect(draw(new Rng(1, RNG_STREAM.service), 20)).not.toEqual(a);
  });

  it('pins the first outputs of seed 1, so that a change of generator (and of every published figure) is noticed', () => {
    const rng = new Rng(1, 0);
    expect([rng.nextUint32(), rng.nextUint32(), rng.nextUint32()]).toEqual([2466671647, 704075991, 1425070668]);
  });

  it('draws uniforms in [0, 1) with mean 1/2', () => {
    const xs = draw(new Rng(7), 100_000);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    expect(xs.reduce((a, b) => a + b, 0) / xs.length).toBeCloseTo(0.5, 2);
  });

  it('draws gamma service times with mean shape × scale and coefficient of variation 1/√shape', () => {
    const rng = new Rng(3, RNG_STREAM.service);
    const n = 200_000;
    let sum = 0;
    let sumSq = 0;
    let smallest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const x = rng.gamma(4, 0.125);
      smallest = Math.min(smallest, x);
      sum += x;
      sumSq += x * x;
    }
    const mean = sum / n;
    const sd = Math.sqrt(sumSq / n - mean * mean);
    expect(smallest).toBeGreaterThan(0);
    expect(mean).toBeCloseTo(0.5, 2);
    expect(sd / mean).toBeCloseTo(0.5, 2);
  });

  it('refuses a gamma shape below 1 (Marsaglia–Tsang needs at least 1)', () => {
    expect(() => new Rng(1).gamma(0.5, 1)).toThrow(RangeError);
  });
});
