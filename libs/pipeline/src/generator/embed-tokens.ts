/** onnx/embed_tokens.onnx: input_ids → inputs_embeds, as transformers.js's `encode_text` expects. */
import { GraphBuilder, type Precision } from './onnx-builder.js';
import type { ModelPreset } from './presets.js';
import type { EncodedModel } from './proto-stream.js';
import type { WeightSource } from './rng.js';
import { embedTokens } from './vocab.js';

/** inputs_embeds has the activation type, so it feeds the decoder of the same variant unchanged. */
export function buildEmbedTokens(p: ModelPreset, w: WeightSource, precision?: Precision): EncodedModel {
  const g = new GraphBuilder('embed_tokens', precision);
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const embeds = embedTokens(g, w, ids, p);
  g.output('inputs_embeds', embeds, g.act, ['batch_size', 'sequence_length', p.text.hiddenSize]);
  return g.finish();
}
