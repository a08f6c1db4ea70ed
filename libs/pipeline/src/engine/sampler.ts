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
// Buckets of the scaled logit range (-NEGLIGIBLE, 0] used to find the top-p cut without sorting the vocabulary.
const BUCKETS = 1024;

/** The tokens top-p keeps, with their unnormalised probabilities. */
export interface Nucleus {
  ids: Int32Array;
  weights: Float64Array;
  /** Sum of `weights`. */
  mass: number;
}

/**
 * Temperature + top-p filtering of one row of logits: the smallest set of the
 * most probable tokens (ties: lower id first) whose probability mass reaches
 * `topP`, always at least one token. Linear in the vocabulary: the scaled
 * logits are bucketed by value, whole buckets above the cut are kept as they
 * are and only the bucket the cut falls into is sorted (a full sort of a
 * 150k-token vocabulary per token costs more than the decoder step).
 */
export function nucleus(logits: Float32Array, temperature: number, topP: number): Nucleus {
  const best = argmax(logits);
  const max = logits[best] as number;
  const invT = 1 / temperature;
  const n = logits.length;
  const weights = new Float64Array(n);
  const bucketOf = new Uint16Array(n);
  const bucketMass = new Float64Array(BUCKETS);
  const bucketCount = new Uint32Array(BUCKETS);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const z = ((logits[i] as number) - max) * invT;
    if (!(z > -NEGLIGIBLE)) continue;
    const w = Math.exp(z);
    const b = Math.min(BUCKETS - 1, Math.floor((-z * BUCKETS) / NEGLIGIBLE));
    weights[i] = w;
    bucketOf[i] = b;
    bucketMass[b] = (bucketMass[b] as number) + w;
    bucketCount[b] = (bucketCount[b] as number) + 1;
    total += w;
  }
  if (!(total > 0)) return { ids: Int32Array.of(best), weights: Float64Array.of(1), mass: 1 };

  // Whole buckets strictly above the cut, then part of the bucket it falls into.
  const target = topP * total;
  let cut = BUCKETS;
  let above = 0;
  if (topP < 1) {
    for (let b = 0; b < BUCKETS; b++) {
      if (above + (bucketMass[b] as number) >= target) {
        cut = b;
        break;
      }
      above += bucketMass[b] as number;
    }
  }
  // The cut bucket, sorted (most probable first, then lower id), up to the target mass.
  let mass = cut === BUCKETS ? total : above;
  const taken: number[] = [];
  if (cut < BUCKETS) {
    const partial: number[] = [];
    for (let i = 0; i < n; i++) if (bucketOf[i] === cut && (weights[i] as number) > 0) partial.push(i);
    partial.sort((a, b) => (weights[b] as number) - (weights[a] as number) || a - b);
    for (const i of partial) {
      taken.push(i);
      mass += weights[i] as number;
      if (mass >= target) break;
    }
  }
  let whole = 0;
  for (let b = 0; b < cut; b++) whole += bucketCount[b] as number;
  const ids = new Int32Array(whole + taken.length);
  const kept = new Float64Array(ids.length);
  let k = 0;
  for (let i = 0; i < n && k < whole; i++) {
    if ((weights[i] as number) > 0 && (bucketOf[i] as number) < cut) {
      ids[k] = i;
      kept[k++] = weights[i] as number;
    }
  }
  for (const i of taken) {
    ids[k] = i;
    kept[k++] = weights[i] as number;
  }
  return { ids, weights: kept, mass };
}

/**
 * Greedy when temperature is 0; otherwise temperature + nucleus (top-p)
 * sampling, reproducible when a seed is given.
 */
export function createSampler(p: DecodingParams): Sampler {
  if (p.temperature === 0) return argmax;
  const random = rng(p.seed ?? randomInt(2 ** 32 - 1));
  return (logits) => {
    const { ids, weights, mass } = nucleus(logits, p.temperature, p.topP);
    let r = random() * mass;
    for (let k = 0; k < ids.length; k++) {
      r -= weights[k] as number;
      if (r <= 0) return ids[k] as number;
    }
    return ids[ids.length - 1] as number;
  };
}
