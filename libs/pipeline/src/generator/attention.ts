/**
 * Qwen2 self-attention with RoPE, grouped-query heads and a KV cache, in
 * standard ONNX ops (only the projections may be contrib MatMulNBits), in the
 * graph's activation type.
 */
import { DataType, LOWEST, type GraphBuilder } from './onnx-builder.js';
import { linear } from './layers.js';
import type { TextDims } from './presets.js';
import type { WeightSource } from './rng.js';

/** Values computed once per forward pass and shared by every layer. */
export interface AttentionContext {
  /** [B, 1, S, D] RoPE tables for the new positions. */
  cos: string;
  sin: string;
  /** [B, 1, 1, S, T] bool: causal AND not padding. */
  allowed: string;
}

/**
 * cos/sin of position_ids · inv_freq, duplicated over both halves (rotate-half
 * layout). Computed in float32 whatever the activation type: float16 cannot hold
 * position · frequency products precisely past a few thousand positions.
 */
export function ropeTables(g: GraphBuilder, positionIds: string, t: TextDims): { cos: string; sin: string } {
  const half = t.headDim / 2;
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(t.ropeTheta, (2 * i) / t.headDim);
  const pos = g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: DataType.FLOAT }), g.i64([-1])]);
  const freqs = g.op('Mul', [pos, g.weight('rope.inv_freq', [half], invFreq, 'float32')]);
  const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
  return {
    cos: g.op('Unsqueeze', [g.toAct(g.op('Cos', [emb])), g.i64([1])]),
    sin: g.op('Unsqueeze', [g.toAct(g.op('Sin', [emb])), g.i64([1])]),
  };
}

/**
 * Query at cache index past_len + s may see key j iff j <= past_len + s and
 * attention_mask[b, j] == 1. Indices come from the cache length, not from
 * position_ids, so left padding shifts RoPE positions but not causality.
 */
export function attentionMask(g: GraphBuilder, inputsEmbeds: string, attentionMask: string, pastKey0: string): string {
  const scalar = (v: number) => g.i64([v], []);
  const seqLen = g.op('Gather', [g.op('Shape', [inputsEmbeds]), scalar(1)], { axis: 0 });
  const pastLen = g.op('Gather', [g.op('Shape', [pastKey0]), scalar(2)], { axis: 0 });
  const totalLen = g.op('Gather', [g.op('Shape', [attentionMask]), scalar(1)], { axis: 0 });
  const queryIdx = g.op('Range', [pastLen, g.op('Add', [pastLen, seqLen]), scalar(1)]);
  const keyIdx = g.op('Range', [scalar(0), totalLen, scalar(1)]);
  const causal = g.op('LessOrEqual', [
    g.op('Unsqueeze', [keyIdx, g.i64([0])]),
    g.op('Unsqueeze', [queryIdx, g.i64([1])]),
  ]);
  const notPad = g.op('Unsqueeze', [g.op('Equal', [attentionMask, g.i64([1], [])]), g.i64([1, 2, 3])]);
  return g.op('And', [causal, notPad]);
}

function rotateHalf(g: GraphBuilder, x: string, headDim: number): string {
  const half = headDim / 2;
  const first = g.op('Slice', [x, g.i64([0]), g.i64([half]), g.i64([-1])]);
  const second = g.op('Slice', [x, g.i64([half]), g.i64([headDim]), g.i64([-1])]);
  return g.op('Concat', [g.op('Neg', [second]), first], { axis: -1 });
}

function applyRope(g: GraphBuilder, x: string, ctx: AttentionContext, headDim: number): string {
  return g.op('Add', [g.op('Mul', [x, ctx.cos]), g.op('Mul', [rotateHalf(g, x, headDim), ctx.sin])]);
}

/** [B, S, heads·D] → [B, heads, S, D] */
function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.i64([0, 0, heads, headDim])])], { perm: [0, 2, 1, 3] });
}

export interface AttentionResult {
  out: string;
  presentKey: string;
  presentValue: string;
}

export function selfAttention(
  g: GraphBuilder,
  w: WeightSource,
  x: string,
  prefix: string,
  t: TextDims,
  ctx: AttentionContext,
  pastKey: string,
  pastValue: string,
): AttentionResult {
  const { hiddenSize: H, numHeads: NH, numKvHeads: KV, headDim: D } = t;
  const groups = NH / KV;
  // Qwen2 has biases on q/k/v but not on o_proj.
  const qkv = { gain: 1, biasStd: 0.1 };
  const q = applyRope(g, splitHeads(g, linear(g, w, x, `${prefix}.q_proj`, H, NH * D, qkv), NH, D), ctx, D);
  const k = applyRope(g, splitHeads(g, linear(g, w, x, `${prefix}.k_proj`, H, KV * D, qkv), KV, D), ctx, D);
  const v = splitHeads(g, linear(g, w, x, `${prefix}.v_proj`, H, KV * D, qkv), KV, D);
  const presentKey = g.op('Concat', [pastKey, k], { axis: 2 });
  const presentValue = g.op('Concat', [pastValue, v], { axis: 2 });

  // Grouped-query attention without copying K/V: query head h = kv·groups + g is
  // reshaped to [B, KV, groups, S, D] and MatMul broadcasts K/V over the group axis.
  const q5 = g.op('Reshape', [q, g.i64([0, KV, groups, -1, D])]);
  const kT5 = g.op('Unsqueeze', [g.op('Transpose', [presentKey], { perm: [0, 1, 3, 2] }), g.i64([2])]);
  const v5 = g.op('Unsqueeze', [presentValue, g.i64([2])]);
  const scores = g.op('Mul', [g.op('MatMul', [q5, kT5]), g.scalar(1 / Math.sqrt(D))]);
  // The lowest finite value, not -inf: a fully masked row (a padded query
  // position) then softmaxes to a uniform distribution instead of NaN.
  const masked = g.op('Where', [ctx.allowed, scores, g.scalar(LOWEST[g.act])]);
  const probs = g.op('Softmax', [masked], { axis: -1 });
  const heads = g.op('Reshape', [g.op('MatMul', [probs, v5]), g.i64([0, NH, -1, D])]);
  const merged = g.op('Reshape', [g.op('Transpose', [heads], { perm: [0, 2, 1, 3] }), g.i64([0, 0, NH * D])]);
  const out = linear(g, w, merged, `${prefix}.o_proj`, NH * D, H, { gain: 1, biasStd: null });
  return { out, presentKey, presentValue };
}
