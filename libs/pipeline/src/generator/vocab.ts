/**
 * The two vocabulary-sized matrices (token embedding and lm_head). They are the
 * only tensors whose size is set by the tokenizer rather than the preset, so the
 * low-rank options live here.
 */
import { DataType, float16Bytes, type GraphBuilder } from './onnx-builder.js';
import { rmsNormalize } from './layers.js';
import type { LowRankVocab, ModelPreset } from './presets.js';
import type { WeightSource } from './rng.js';

/** int8 factors hold round(N(0,1) · INT8_SCALE): ±127 clips at ~4σ. */
const INT8_SCALE = 32;

/**
 * Stores a vocabulary factor of N(0,1)-distributed values in `lr.storage` and
 * returns its name plus the scale that maps stored values back to N(0,1); the
 * caller folds that scale into its float32 factor.
 */
function storedFactor(
  g: GraphBuilder,
  w: WeightSource,
  name: string,
  dims: readonly number[],
  lr: LowRankVocab,
): { raw: string; scale: number } {
  const count = dims.reduce((a, b) => a * b, 1);
  if (lr.storage === 'int8') {
    const q = w.int8Normal(name, count, INT8_SCALE);
    return { raw: g.initializer(name, 'int8', dims, new Uint8Array(q.buffer)), scale: 1 / INT8_SCALE };
  }
  return { raw: g.initializer(name, 'float16', dims, float16Bytes(w.normal(name, count, 1))), scale: 1 };
}

/** input_ids [B, S] → embeddings [B, S, hidden] with entries of roughly unit variance. */
export function embedTokens(g: GraphBuilder, w: WeightSource, ids: string, p: ModelPreset): string {
  const { vocabSize: V, hiddenSize: H } = p.text;
  const lr = p.embedTokens;
  if (!lr) {
    const table = g.weight('model.embed_tokens.weight', [V, H], w.normal('model.embed_tokens.weight', V * H, 1));
    return g.op('Gather', [table, ids], { axis: 0 });
  }
  const r = lr.rank;
  const { raw, scale } = storedFactor(g, w, 'model.embed_tokens.low_rank.table', [V, r], lr);
  const proj = w.normal('model.embed_tokens.low_rank.proj', r * H, scale / Math.sqrt(r));
  // Gather before Cast: only the looked-up rows are widened to float32.
  const rows = g.op('Cast', [g.op('Gather', [raw, ids], { axis: 0 })], { to: DataType.FLOAT });
  return g.op('MatMul', [rows, g.weight('model.embed_tokens.low_rank.proj', [r, H], proj)]);
}

/**
 * hidden [B, S, H] (RMS-normalised) → logits [B, S, V]. The weights are scaled so
 * that the logits of one position spread with std ≈ `logitStd` across the vocabulary.
 */
export function lmHead(g: GraphBuilder, w: WeightSource, hidden: string, p: ModelPreset): string {
  const { vocabSize: V, hiddenSize: H } = p.text;
  const lr = p.lmHead;
  if (!lr) {
    const full = w.normal('lm_head.weight', H * V, p.logitStd / Math.sqrt(H));
    return g.op('MatMul', [hidden, g.weight('lm_head.weight', [H, V], full)]);
  }
  const r = lr.rank;
  const { raw, scale } = storedFactor(g, w, 'lm_head.low_rank.vocab', [r, V], lr);
  // Cast of an initializer is folded once at session creation, so decoding pays only the MatMuls.
  const vocab = g.op('Cast', [raw], { to: DataType.FLOAT });
  const down = w.normal('lm_head.low_rank.proj', H * r, 1 / Math.sqrt(H));
  const z = g.op('MatMul', [hidden, g.weight('lm_head.low_rank.proj', [H, r], down)]);
  // With only r dims, |z| alone would swing the logit spread by ~±50% between
  // positions; normalising z pins every position's spread at logitStd.
  const zn = g.op('Mul', [rmsNormalize(g, z, 1e-6), g.f32((scale * p.logitStd) / Math.sqrt(r))]);
  return g.op('MatMul', [zn, vocab]);
}
