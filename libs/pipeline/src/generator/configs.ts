/** The JSON side files of the export, from a preset. */
import { numImageTokens, TOKEN_IDS, type ModelPreset } from './presets.js';
import { SPECIAL_TOKENS } from './tokenizer-files.js';

/** Qwen2's chat template, verbatim (`\n` are Jinja escapes, hence String.raw). */
export const CHAT_TEMPLATE = String.raw`{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`;

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * transformers.js reads the text dims of llava_qwen2 from the top level (not a
 * nested text_config): num_key_value_heads, num_hidden_layers and head_dim size
 * the KV cache, image_token_index locates the image rows.
 */
export function configJson(p: ModelPreset): Record<string, unknown> {
  const t = p.text;
  return {
    architectures: ['LlavaQwen2ForCausalLM'],
    model_type: 'llava_qwen2',
    image_token_index: TOKEN_IDS.image,
    hidden_size: t.hiddenSize,
    intermediate_size: t.intermediateSize,
    num_hidden_layers: t.numLayers,
    num_attention_heads: t.numHeads,
    num_key_value_heads: t.numKvHeads,
    head_dim: t.headDim,
    hidden_act: 'silu',
    vocab_size: t.vocabSize,
    max_position_embeddings: t.maxPositionEmbeddings,
    rope_theta: t.ropeTheta,
    rms_norm_eps: t.rmsNormEps,
    bos_token_id: TOKEN_IDS.endOfText,
    eos_token_id: TOKEN_IDS.imEnd,
    tie_word_embeddings: false,
    torch_dtype: 'float32',
    use_cache: true,
    mm_hidden_size: p.vision.mmHiddenSize,
    mm_projector_type: 'mlp2x_gelu',
  };
}

/** Only ids: anything else here (penalties, sampling) would change greedy decoding. */
export function generationConfigJson(): Record<string, unknown> {
  return { bos_token_id: TOKEN_IDS.endOfText, eos_token_id: TOKEN_IDS.imEnd };
}

export function preprocessorConfigJson(p: ModelPreset): Record<string, unknown> {
  const S = p.vision.imageSize;
  return {
    image_processor_type: 'CLIPImageProcessor',
    processor_class: 'LlavaProcessor',
    do_resize: true,
    size: { shortest_edge: S },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: S, width: S },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0, 0, 0],
    image_std: [1, 1, 1],
    do_convert_rgb: true,
  };
}

/** LlavaProcessor expands one `<image>` into (S/P)² copies; the encoder emits that many rows. */
export function processorConfigJson(p: ModelPreset): Record<string, unknown> {
  if (numImageTokens(p.vision) <= 0) throw new Error('preset yields no image tokens');
  return {
    image_token: '<image>',
    num_additional_image_tokens: 0,
    patch_size: p.vision.patchSize,
    processor_class: 'LlavaProcessor',
  };
}

export function tokenizerConfigJson(p: ModelPreset): Record<string, unknown> {
  const decoder: Record<string, unknown> = {};
  for (const { id, content } of SPECIAL_TOKENS) {
    decoder[String(id)] = { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  }
  return {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: decoder,
    bos_token: null,
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|im_end|>',
    errors: 'replace',
    model_max_length: p.text.maxPositionEmbeddings,
    pad_token: '<|endoftext|>',
    processor_class: 'LlavaProcessor',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
}
