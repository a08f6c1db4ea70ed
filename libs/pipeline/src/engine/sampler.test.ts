import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DecodingParams } from '@fastvlm/contracts';
import { argmax, createSampler, nucleus } from './sampler';

const params = (temperature: number, topP: number, seed?: number): DecodingParams => ({
  maxTokens: 1,
  temperature,
  topP,
  stop: [],
  ...(seed === undefined ? {} : { seed }),
});

/** Logits whose softmax is exactly `probs`. */
const logitsOf = (probs: number[]): Float32Array => Float32Array.from(probs, (p) => Math.log(p));

function frequencies(sample: (l: Float32Array) => number, logits: Float32Array, draws: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let i = 0; i < draws; i++) {
    const t = sample(logits);
    counts[t] = (counts[t] ?? 0) + 1;
  }
  return counts.map((c) => c / draws);
}

/** The textbook definition: sort by probability (ties: lower id), keep the shortest prefix reaching top_p. */
function referenceNucleus(logits: Float32Array, temperature: number, topP: number): number[] {
  const max = logits.reduce((a, b) => Math.max(a, b), -Infinity);
  const w = Array.from(logits, (l) => {
    const z = (l - max) / temperature;
    return z > -30 ? Math.exp(z) : 0;
  });
  const total = w.reduce((a, b) => a + b, 0);
  const order = w.map((_, i) => i).filter((i) => (w[i] ?? 0) > 0);
  // All -Infinity: there is still a next token, the first one.
  if (order.length === 0) return [0];
  order.sort((a, b) => (w[b] ?? 0) - (w[a] ?? 0) || a - b);
  const kept: number[] = [];
  let mass = 0;
  for (const i of order) {
    kept.push(i);
    mass += w[i] ?? 0;
    if (mass >= topP * total) break;
  }
  return kept.sort((a, b) => a - b);
}

describe('greedy', () => {
  it('temperature 0 picks the largest logit, the first one on ties (as transformers.js)', () => {
    const sample = createSampler(params(0, 1));
    expect(sample(Float32Array.of(0.1, 3, -2, 3))).toBe(1);
    expect(argmax(Float32Array.of(-Infinity, -Infinity))).toBe(0);
  });
});

describe('seeded sampling', () => {
  const logits = logitsOf([0.25, 0.25, 0.2, 0.15, 0.15]);
  const draws = (seed: number) => {
    const sample = createSampler(params(1, 1, seed));
    return Array.from({ length: 64 }, () => sample(logits));
  };

  it('the same seed draws the same sequence', () => {
    expect(draws(42)).toEqual(draws(42));
  });

  it('a different seed draws a different sequence', () => {
    expect(draws(43)).not.toEqual(draws(42));
  });

  it('draws tokens with their softmax probabilities', () => {
    const f = frequencies(createSampler(params(1, 1, 7)), logitsOf([0.5, 0.3, 0.2]), 20_000);
    expect(f[0]).toBeCloseTo(0.5, 1);
    expect(f[1]).toBeCloseTo(0.3, 1);
    expect(f[2]).toBeCloseTo(0.2, 1);
  });

  it('a lower temperature sharpens the distribution', () => {
    const logits = Float32Array.of(1, 0);
    const cold = frequencies(createSampler(params(0.25, 1, 1)), logits, 5000)[0] ?? 0;
    const hot = frequencies(createSampler(params(4, 1, 1)), logits, 5000)[0] ?? 0;
    expect(cold).toBeGreaterThan(0.95);
    expect(hot).toBeLessThan(0.65);
  });

  it('never draws a token whose logit is -Infinity, and copes when all are', () => {
    const f = frequencies(createSampler(params(1, 1, 3)), Float32Array.of(-Infinity, 0, -Infinity, 0), 2000);
    expect(f[0]).toBe(0);
    expect(f[2]).toBe(0);
    expect(createSampler(params(1, 1, 3))(Float32Array.of(-Infinity, -Infinity))).toBe(0);
  });
});

describe('top-p', () => {
  it('a tiny top_p is greedy, including the tie-break', () => {
    const sample = createSampler(params(1, 1e-6, 5));
    for (let i = 0; i < 50; i++) expect(sample(Float32Array.of(0, 2, 1, 2))).toBe(1);
  });

  it('only tokens inside the nucleus are drawn, in proportion to their probabilities', () => {
    const f = frequencies(createSampler(params(1, 0.7, 11)), logitsOf([0.5, 0.3, 0.2]), 20_000);
    expect(f[2]).toBe(0);
    expect(f[0]).toBeCloseTo(0.5 / 0.8, 1);
  });

  it('keeps exactly the shortest most-probable prefix reaching top_p (property, vs. a full sort)', () => {
    const logit = fc.oneof(fc.integer({ min: -40, max: 40 }).map((v) => v / 4), fc.constant(-Infinity));
    fc.assert(
      fc.property(
        fc.array(logit, { minLength: 1, maxLength: 300 }),
        fc.double({ min: 0.05, max: 3, noNaN: true }),
        fc.double({ min: 1e-6, max: 1, noNaN: true }),
        (values, temperature, topP) => {
          const logits = Float32Array.from(values);
          const got = nucleus(logits, temperature, topP);
          expect([...got.ids].sort((a, b) => a - b)).toEqual(referenceNucleus(logits, temperature, topP));
          expect(got.mass).toBeCloseTo(got.weights.reduce((a, b) => a + b, 0), 9);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('handles a full-size vocabulary with every token a candidate', () => {
    const logits = Float32Array.from({ length: 151_936 }, (_, i) => Math.sin(i) * 6);
    const all = nucleus(logits, 1, 1);
    expect(all.ids.length).toBe(151_936);
    const top = nucleus(logits, 1, 0.5);
    expect(top.ids.length).toBeGreaterThan(1);
    expect(top.ids.length).toBeLessThan(151_936);
    expect([...top.ids].sort((a, b) => a - b)).toEqual(referenceNucleus(logits, 1, 0.5));
  });
});
