/** onnx/embed_tokens.onnx: input_ids → inputs_embeds, as transformers.js's `encode_text` expects. */
import { GraphBuilder } from './onnx-builder.js';
import type { ModelPreset } from './presets.js';
import type { WeightSource } from './rng.js';
import { embedTokens } from './vocab.js';

export function buildEmbedTokens(p: ModelPreset, w: WeightSource): Uint8Array {
  const g = new GraphBuilder('embed_tokens');
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const embeds = embedTokens(g, w, ids, p);
  g.output('inputs_embeds', embeds, 'float32', ['batch_size', 'sequence_length', p.text.hiddenSize]);
  return g.encode();
}
