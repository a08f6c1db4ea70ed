import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel, PRESETS } from './index.js';

const { numLayers: L, numKvHeads: KV, headDim: D, hiddenSize: H, vocabSize: V } = PRESETS.tiny.text;
const TOL = 1e-4;

let root: string;
let embed: ort.InferenceSession;
let decoder: ort.InferenceSession;

type Cache = Record<string, ort.Tensor>;

const i64 = (values: readonly number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);

function emptyCache(batch: number): Cache {
  const cache: Cache = {};
  for (let i = 0; i < L; i++) {
    for (const kind of ['key', 'value']) {
      cache[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', new Float32Array(0), [batch, KV, 0, D]);
    }
  }
  return cache;
}

async function embedIds(rows: readonly (readonly number[])[]): Promise<ort.Tensor> {
  const out = await embed.run({ input_ids: i64(rows.flat(), [rows.length, rows[0]?.length ?? 0]) });
  if (!out.inputs_embeds) throw new Error('no inputs_embeds');
  return out.inputs_embeds;
}

/** One decoder call; returns logits as [batch][position] rows and the next cache. */
async function step(
  ids: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
  positions: readonly (readonly number[])[],
  cache: Cache,
): Promise<{ logits: Float32Array[][]; cache: Cache }> {
  const B = ids.length;
  const S = ids[0]?.length ?? 0;
  const out = await decoder.run({
    inputs_embeds: await embedIds(ids),
    attention_mask: i64(mask.flat(), [B, mask[0]?.length ?? 0]),
    position_ids: i64(positions.flat(), [B, S]),
    ...cache,
  });
  const data = out.logits?.data;
  if (!(data instanceof Float32Array)) throw new Error('no logits');
  const logits = Array.from({ length: B }, (_, b) =>
    Array.from({ length: S }, (_, s) => data.subarray((b * S + s) * V, (b * S + s + 1) * V)),
  );
  const next: Cache = {};
  for (let i = 0; i < L; i++) {
    for (const kind of ['key', 'value']) {
      const t = out[`present.${i}.${kind}`];
      if (!t) throw new Error(`no present.${i}.${kind}`);
      next[`past_key_values.${i}.${kind}`] = t;
    }
  }
  return { logits, cache: next };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] ?? 0) - (b[i] ?? 0)));
  return m;
}

/** transformers.js's position ids: cumsum(mask) - 1, with masked positions set to 1. */
function positionIdsFor(mask: readonly number[]): number[] {
  let sum = 0;
  return mask.map((m) => {
    sum += m;
    return m === 0 ? 1 : sum - 1;
  });
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);
const ones = (n: number) => new Array<number>(n).fill(1);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-decoder-'));
  await generateModel({ preset: 'tiny', outDir: join(root, 'model'), seed: 7 });
  embed = await ort.InferenceSession.create(join(root, 'model/onnx/embed_tokens.onnx'));
  decoder = await ort.InferenceSession.create(join(root, 'model/onnx/decoder_model_merged.onnx'));
});

afterAll(async () => {
  await embed?.release();
  await decoder?.release();
  await rm(root, { recursive: true, force: true });
});

describe('decoder KV cache', () => {
  it('gives the same logits decoding token by token from the cache as in one full pass', async () => {
    const ids = [151644, 8948, 198, 151646, 151646, 151646, 3838, 374, 419, 30, 151645, 198];
    const N = ids.length;
    const k = 4;
    const full = await step([ids], [ones(N)], [range(N)], emptyCache(1));

    let { logits, cache } = await step([ids.slice(0, N - k)], [ones(N - k)], [range(N - k)], emptyCache(1));
    const incremental = [...(logits[0] ?? [])];
    for (let pos = N - k; pos < N; pos++) {
      ({ logits, cache } = await step([[ids[pos] ?? 0]], [ones(pos + 1)], [[pos]], cache));
      incremental.push(...(logits[0] ?? []));
    }
    expect(cache['past_key_values.0.key']?.dims).toEqual([1, KV, N, D]);
    for (let pos = 0; pos < N; pos++) {
      const a = full.logits[0]?.[pos];
      const b = incremental[pos];
      if (!a || !b) throw new Error(`missing logits at ${pos}`);
      expect(maxAbsDiff(a, b), `position ${pos}`).toBeLessThan(TOL);
    }
  });

  it('returns present = past concatenated with the new keys along the sequence axis', async () => {
    const first = await step([[1, 2, 3]], [ones(3)], [range(3)], emptyCache(1));
    const second = await step([[4]], [ones(4)], [[3]], first.cache);
    const past = first.cache['past_key_values.1.value']?.data as Float32Array;
    const present = second.cache['past_key_values.1.value']?.data as Float32Array;
    for (let h = 0; h < KV; h++) {
      const before = past.subarray(h * 3 * D, (h + 1) * 3 * D);
      const after = present.subarray(h * 4 * D, h * 4 * D + 3 * D);
      expect(maxAbsDiff(before, after)).toBe(0);
    }
  });
});

describe('decoder padding', () => {
  const row0 = [151644, 872, 198, 3838, 374, 151645];
  const row1 = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13];
  const pad = row1.length - row0.length;
  const mask0 = [...new Array<number>(pad).fill(0), ...ones(row0.length)];
  const padded0 = [...new Array<number>(pad).fill(151643), ...row0];

  it('gives a left-padded row the logits it has alone, at prefill and at the next cached step', async () => {
    const batch = await step([padded0, row1], [mask0, ones(row1.length)], [positionIdsFor(mask0), range(row1.length)], emptyCache(2));
    const alone = await step([row0], [ones(row0.length)], [range(row0.length)], emptyCache(1));
    for (let s = 0; s < row0.length; s++) {
      const a = batch.logits[0]?.[pad + s];
      const b = alone.logits[0]?.[s];
      if (!a || !b) throw new Error(`missing logits at ${s}`);
      expect(maxAbsDiff(a, b), `prefill position ${s}`).toBeLessThan(TOL);
    }

    const next = 30;
    const batchStep = await step([[next], [next]], [[...mask0, 1], ones(row1.length + 1)], [[row0.length], [row1.length]], batch.cache);
    const aloneStep = await step([[next]], [ones(row0.length + 1)], [[row0.length]], alone.cache);
    const a = batchStep.logits[0]?.[0];
    const b = aloneStep.logits[0]?.[0];
    if (!a || !b) throw new Error('missing next-step logits');
    expect(maxAbsDiff(a, b)).toBeLessThan(TOL);
  });

  it('keeps fully masked padding positions finite (no NaN from an all-masked softmax row)', async () => {
    const batch = await step([padded0], [mask0], [positionIdsFor(mask0)], emptyCache(1));
    for (let s = 0; s < pad; s++) {
      expect(batch.logits[0]?.[s]?.every(Number.isFinite), `padded position ${s}`).toBe(true);
    }
  });
});

describe('decoder conditioning', () => {
  it('spreads logits widely across the vocabulary so greedy picks are not near-ties', async () => {
    const ids = [151644, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151645, 198, 151644];
    const { logits } = await step([ids], [ones(ids.length)], [range(ids.length)], emptyCache(1));
    const gaps: number[] = [];
    for (const row of logits[0] ?? []) {
      let sum = 0;
      let sumSq = 0;
      let top = -Infinity;
      let second = -Infinity;
      for (const v of row) {
        sum += v;
        sumSq += v * v;
        if (v > top) [second, top] = [top, v];
        else if (v > second) second = v;
      }
      const mean = sum / row.length;
      const std = Math.sqrt(sumSq / row.length - mean * mean);
      expect(std).toBeGreaterThan(3);
      expect(std).toBeLessThan(10);
      gaps.push(top - second);
    }
    // Typical top-2 gaps are O(0.1–1), far above float32 noise between runtimes (~1e-5).
    const sorted = [...gaps].sort((a, b) => a - b);
    expect(sorted[Math.floor(sorted.length / 2)]).toBeGreaterThan(0.05);
  });

  it('keeps embeddings and hidden scales near unit variance', async () => {
    const e = (await embedIds([range(64, 1000)])).data as Float32Array;
    let sumSq = 0;
    for (const v of e) sumSq += v * v;
    const rms = Math.sqrt(sumSq / e.length);
    expect(e.length).toBe(64 * H);
    expect(rms).toBeGreaterThan(0.5);
    expect(rms).toBeLessThan(2);
  });
});
