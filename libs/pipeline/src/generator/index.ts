/**
 * Generator of a random-weight model in the file layout of
 * onnx-community/FastVLM-0.5B-ONNX, so tests and the dev stack exercise the same
 * loading code as real deployments.
 */
import {
  configJson,
  generationConfigJson,
  json,
  preprocessorConfigJson,
  processorConfigJson,
  tokenizerConfigJson,
} from './configs.js';
import { buildDecoder } from './decoder.js';
import { buildEmbedTokens } from './embed-tokens.js';
import { PRESETS, validatePreset, type ModelPreset, type PresetName } from './presets.js';
import { WeightSource } from './rng.js';
import { tokenizerJson } from './tokenizer-files.js';
import { buildVisionEncoder } from './vision-encoder.js';
import { writeFolderAtomically, type OutputFile } from './write-atomic.js';

export { PRESETS, numImageTokens, TOKEN_IDS, type ModelPreset, type PresetName } from './presets.js';

export interface GenerateModelOptions {
  preset: PresetName;
  outDir: string;
  /** Unsigned 32-bit integer; default 0. */
  seed?: number;
}

/** Every file of the model, in memory. Same preset and seed → identical bytes. */
export async function buildModelFiles(preset: ModelPreset, seed: number): Promise<OutputFile[]> {
  validatePreset(preset);
  const w = new WeightSource(seed);
  return [
    { path: 'config.json', data: json(configJson(preset)) },
    { path: 'generation_config.json', data: json(generationConfigJson()) },
    { path: 'preprocessor_config.json', data: json(preprocessorConfigJson(preset)) },
    { path: 'processor_config.json', data: json(processorConfigJson(preset)) },
    { path: 'tokenizer_config.json', data: json(tokenizerConfigJson(preset)) },
    { path: 'tokenizer.json', data: await tokenizerJson() },
    { path: 'onnx/vision_encoder.onnx', data: buildVisionEncoder(preset, w) },
    { path: 'onnx/embed_tokens.onnx', data: buildEmbedTokens(preset, w) },
    { path: 'onnx/decoder_model_merged.onnx', data: buildDecoder(preset, w) },
  ];
}

export async function generateModel(opts: GenerateModelOptions): Promise<void> {
  const preset: ModelPreset | undefined = Object.hasOwn(PRESETS, opts.preset) ? PRESETS[opts.preset] : undefined;
  if (!preset) throw new Error(`unknown preset "${String(opts.preset)}" (known: ${Object.keys(PRESETS).join(', ')})`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  await writeFolderAtomically(opts.outDir, await buildModelFiles(preset, seed));
}
