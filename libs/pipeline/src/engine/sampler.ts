import { randomInt } from 'node:crypto';
import type { DecodingParams } from '@fastvlm/contracts';

/** Picks the next token from one row of logits. */
export type Sampler = (logits: Float32Array) => number;

/** First index of the largest value: the same tie-break as transformers.js, so greedy outputs match. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0] ?? -Infinity;
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/** mulberry32: tiny, fast, and good enough to make seeded sampling reproducible. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Tokens whose probability is below e^-30 of the best one cannot matter at any top_p.
const NEGLIGIBLE = 30;

/**
 * Greedy when temperature is 0; otherwise temperature + nucleus (top-p)
 * sampling, reproducible when a seed is given.
 */
export function createSampler(p: DecodingParams): Sampler {
  if (p.temperature === 0) return argmax;
  const random = rng(p.seed ?? randomInt(2 ** 32 - 1));
  const invT = 1 / p.temperature;
  return (logits) => {
    const max = logits[argmax(logits)] as number;
    const ids: number[] = [];
    const weights: number[] = [];
    for (let i = 0; i < logits.length; i++) {
      const z = ((logits[i] as number) - max) * invT;
      if (z > -NEGLIGIBLE) {
        ids.push(i);
        weights.push(Math.exp(z));
      }
    }
    const order = ids.map((_, k) => k).sort((a, b) => (weights[b] as number) - (weights[a] as number) || (ids[a] as number) - (ids[b] as number));
    const total = weights.reduce((s, w) => s + w, 0);
    // Keep the smallest prefix whose mass reaches top_p (always at least one token).
    let kept = 0;
    let mass = 0;
    for (const k of order) {
      kept++;
      mass += weights[k] as number;
      if (mass >= p.topP * total) break;
    }
    let r = random() * mass;
    for (let j = 0; j < kept; j++) {
      const k = order[j] as number;
      r -= weights[k] as number;
      if (r <= 0) return ids[k] as number;
    }
    return ids[order[kept - 1] as number] as number;
  };
}
