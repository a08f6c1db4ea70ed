/**
 * onnx/decoder_model_merged.onnx: a real Qwen2 decoder over inputs_embeds with a
 * KV cache, laid out like the optimum/transformers.js export it stands in for.
 */
import { attentionMask, ropeTables, selfAttention, type AttentionContext } from './attention.js';
import { linear, rmsNorm, silu } from './layers.js';
import { GraphBuilder, type Precision } from './onnx-builder.js';
import type { EncodedModel } from './proto-stream.js';
import type { ModelPreset, TextDims } from './presets.js';
import type { WeightSource } from './rng.js';
import { lmHead } from './vocab.js';

function mlp(g: GraphBuilder, w: WeightSource, x: string, prefix: string, t: TextDims): string {
  const { hiddenSize: H, intermediateSize: I } = t;
  const gate = linear(g, w, x, `${prefix}.gate_proj`, H, I, { gain: 1, biasStd: null });
  const up = linear(g, w, x, `${prefix}.up_proj`, H, I, { gain: 1, biasStd: null });
  // silu(gate)·up has rms ≈ 0.5 for unit inputs; gain 2 keeps the block's output near unit scale.
  return linear(g, w, g.op('Mul', [silu(g, gate), up]), `${prefix}.down_proj`, I, H, { gain: 2, biasStd: null });
}

/**
 * Every float input and output (inputs_embeds, the KV cache, logits) has the
 * activation type: float16 in the fp16/q4f16 variants, whose cache transformers.js
 * builds from this input metadata.
 */
export function buildDecoder(p: ModelPreset, w: WeightSource, precision?: Precision): EncodedModel {
  const t = p.text;
  const g = new GraphBuilder('decoder_model_merged', precision);
  const act = g.act;
  const embeds = g.input('inputs_embeds', act, ['batch_size', 'sequence_length', t.hiddenSize]);
  const mask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  // transformers.js builds the empty first-step cache from these dims: the symbol
  // "batch_size" becomes the batch, any other symbol becomes 0.
  const pastDims = ['batch_size', t.numKvHeads, 'past_sequence_length', t.headDim];
  const past: { key: string; value: string }[] = [];
  for (let i = 0; i < t.numLayers; i++) {
    past.push({
      key: g.input(`past_key_values.${i}.key`, act, pastDims),
      value: g.input(`past_key_values.${i}.value`, act, pastDims),
    });
  }
  const first = past[0];
  if (!first) throw new Error('a decoder needs at least one layer');

  const ctx: AttentionContext = { ...ropeTables(g, positionIds, t), allowed: attentionMask(g, embeds, mask, first.key) };
  const presents: { key: string; value: string }[] = [];
  let hidden = embeds;
  past.forEach((layerPast, i) => {
    const prefix = `model.layers.${i}`;
    const normed = rmsNorm(g, w, hidden, `${prefix}.input_layernorm.weight`, t.hiddenSize, t.rmsNormEps);
    const attn = selfAttention(g, w, normed, `${prefix}.self_attn`, t, ctx, layerPast.key, layerPast.value);
    presents.push({ key: attn.presentKey, value: attn.presentValue });
    hidden = g.op('Add', [hidden, attn.out]);
    const normed2 = rmsNorm(g, w, hidden, `${prefix}.post_attention_layernorm.weight`, t.hiddenSize, t.rmsNormEps);
    hidden = g.op('Add', [hidden, mlp(g, w, normed2, `${prefix}.mlp`, t)]);
  });
  const final = rmsNorm(g, w, hidden, 'model.norm.weight', t.hiddenSize, t.rmsNormEps);

  g.output('logits', lmHead(g, w, final, p), act, ['batch_size', 'sequence_length', t.vocabSize]);
  const presentDims = ['batch_size', t.numKvHeads, 'total_sequence_length', t.headDim];
  presents.forEach((pr, i) => {
    g.output(`present.${i}.key`, pr.key, act, presentDims);
    g.output(`present.${i}.value`, pr.value, act, presentDims);
  });
  return g.finish();
}
