/**
 * The two vocabulary-sized matrices (token embedding and lm_head). They are the
 * only tensors whose size is set by the tokenizer rather than the preset, so the
 * low-rank options live here.
 */
import { float16Bytes, floatBytes, type GraphBuilder } from './onnx-builder.js';
import { rmsNormalize, weightMatMul } from './layers.js';
import type { LowRankVocab, ModelPreset } from './presets.js';
import { Q4_BLOCK, quantizeQ4, quantizeRowsInt8 } from './quantize.js';
import type { WeightSource } from './rng.js';

/** int8 factors hold round(N(0,1) · INT8_SCALE): ±127 clips at ~4σ. */
const INT8_SCALE = 32;

/**
 * Stores a vocabulary factor of N(0,1)-distributed values in `lr.storage` and
 * returns its name plus the scale that maps stored values back to N(0,1); the
 * caller folds that scale into its float factor.
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

/**
 * A full [V, H] table gathered by `ids`, stored as the graph's precision says:
 * floats, 4-bit blocks along each row, or 8-bit rows with one scale each. Only
 * the looked-up rows are ever widened, so decoding pays nothing for the format.
 */
function fullTable(g: GraphBuilder, w: WeightSource, ids: string, V: number, H: number): string {
  const name = 'model.embed_tokens.weight';
  const values = () => w.normal(name, V * H, 1);
  const scheme = g.precision.matmul;
  switch (scheme) {
    case 'float':
      return g.op('Gather', [g.lazyWeight(name, [V, H], values), ids], { axis: 0 });
    case 'q4': {
      if (H % Q4_BLOCK !== 0) throw new Error(`a 4-bit embedding table needs hidden size divisible by ${Q4_BLOCK}`);
      const blocks = H / Q4_BLOCK;
      let table: ReturnType<typeof quantizeQ4> | undefined;
      const quantized = () => (table ??= quantizeQ4(values(), H, V, Q4_BLOCK, 'nk'));
      const packed = g.lazyInitializer(`${name}_Q4`, 'uint8', [V, H / 2], () => quantized().packed);
      const scales = g.lazyInitializer(`${name}_scales`, g.act, [V, blocks], () => {
        const bytes = floatBytes(quantized().scales, g.act);
        table = undefined;
        return bytes;
      });
      // Unpack the two nibbles of each byte with float ops (exact for 0..255),
      // low nibble first, as quantizeQ4 packed them.
      const bytes = g.cast(g.op('Gather', [packed, ids], { axis: 0 }), 'uint8', g.act);
      const high = g.op('Floor', [g.op('Div', [bytes, g.scalar(16)])]);
      const low = g.op('Sub', [bytes, g.op('Mul', [high, g.scalar(16)])]);
      const last = g.i64([-1]);
      const pairs = g.op('Concat', [g.op('Unsqueeze', [low, last]), g.op('Unsqueeze', [high, last])], { axis: -1 });
      const q = g.op('Sub', [g.op('Reshape', [pairs, g.i64([0, 0, blocks, Q4_BLOCK])]), g.scalar(8)]);
      const rowScales = g.op('Unsqueeze', [g.op('Gather', [scales, ids], { axis: 0 }), last]);
      return g.op('Reshape', [g.op('Mul', [q, rowScales]), g.i64([0, 0, H])]);
    }
    case 'int8':
    case 'uint8': {
      let table: ReturnType<typeof quantizeRowsInt8> | undefined;
      const quantized = () => (table ??= quantizeRowsInt8(values(), V, H, scheme));
      const codes = g.lazyInitializer(`${name}_quantized`, scheme, [V, H], () => quantized().codes);
      const scales = g.lazyInitializer(`${name}_scale`, 'float32', [V], () => {
        const bytes = floatBytes(quantized().scales, 'float32');
        table = undefined;
        return bytes;
      });
      let rows = g.cast(g.op('Gather', [codes, ids], { axis: 0 }), scheme, 'float32');
      if (scheme === 'uint8') rows = g.op('Sub', [rows, g.f32(128)]);
      const rowScales = g.op('Unsqueeze', [g.op('Gather', [scales, ids], { axis: 0 }), g.i64([-1])]);
      return g.op('Mul', [rows, rowScales]);
    }
  }
}

/** input_ids [B, S] → embeddings [B, S, hidden] with entries of roughly unit variance. */
export function embedTokens(g: GraphBuilder, w: WeightSource, ids: string, p: ModelPreset): string {
  const { vocabSize: V, hiddenSize: H } = p.text;
  const lr = p.embedTokens;
  if (!lr) return fullTable(g, w, ids, V, H);
  const r = lr.rank;
  const { raw, scale } = storedFactor(g, w, 'model.embed_tokens.low_rank.table', [V, r], lr);
  const proj = w.normal('model.embed_tokens.low_rank.proj', r * H, scale / Math.sqrt(r));
  // Gather before Cast: only the looked-up rows are widened.
  const rows = g.cast(g.op('Gather', [raw, ids], { axis: 0 }), lr.storage, g.act);
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
    const make = () => w.normal('lm_head.weight', H * V, p.logitStd / Math.sqrt(H));
    return weightMatMul(g, hidden, 'lm_head.weight', H, V, make);
  }
  const r = lr.rank;
  const { raw, scale } = storedFactor(g, w, 'lm_head.low_rank.vocab', [r, V], lr);
  // Cast of an initializer is folded once at session creation, so decoding pays only the MatMuls.
  const vocab = g.cast(raw, lr.storage, g.act);
  const down = w.normal('lm_head.low_rank.proj', H * r, 1 / Math.sqrt(H));
  const z = g.op('MatMul', [hidden, g.weight('lm_head.low_rank.proj', [H, r], down)]);
  // With only r dims, |z| alone would swing the logit spread by ~±50% between
  // positions; normalising z pins every position's spread at logitStd.
  const zn = g.op('Mul', [rmsNormalize(g, z, 1e-6), g.scalar((scale * p.logitStd) / Math.sqrt(r))]);
  return g.op('MatMul', [zn, vocab]);
}
