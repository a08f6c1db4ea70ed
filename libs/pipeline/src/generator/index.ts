/**
 * Generator of a random-weight model in the file layout of
 * onnx-community/FastVLM-0.5B-ONNX, so tests and the dev stack exercise the same
 * loading code as real deployments.
 */
import { onnxFileName, type SessionFile } from '../engine/dtype.js';
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
import type { Precision } from './onnx-builder.js';
import { PRESETS, validatePreset, type ModelPreset, type PresetName } from './presets.js';
import { PROTOBUF_LIMIT_BYTES, type EncodedModel } from './proto-stream.js';
import { WeightSource } from './rng.js';
import { tokenizerJson } from './tokenizer-files.js';
import { DEFAULT_DTYPES, GENERATED_DTYPES, isGeneratedDtype, type GeneratedDtype } from './variants.js';
import { buildVisionEncoder } from './vision-encoder.js';
import { writeFolderAtomically, type OutputFile } from './write-atomic.js';

export { PRESETS, numImageTokens, TOKEN_IDS, type ModelPreset, type PresetName } from './presets.js';
export { GENERATED_DTYPES, parseGeneratedDtypes, type GeneratedDtype } from './variants.js';
export { visionMacs } from './vision-encoder.js';

export interface GenerateModelOptions {
  preset: PresetName;
  outDir: string;
  /** Unsigned 32-bit integer; default 0. */
  seed?: number;
  /**
   * Weight formats to write, each as the three `onnx/<session><suffix>.onnx`
   * files; exactly these are written (default ['fp32']: list fp32 to keep it).
   */
  dtypes?: readonly GeneratedDtype[];
  /** Called before each file is written. */
  onFile?: (path: string, bytes: number) => void;
}

const BUILDERS: Record<SessionFile, (p: ModelPreset, w: WeightSource, precision: Precision) => EncodedModel> = {
  vision_encoder: buildVisionEncoder,
  embed_tokens: buildEmbedTokens,
  decoder_model_merged: buildDecoder,
};

/**
 * Every file of the model; ONNX files are sized here and encoded while written.
 * Same preset, seed and dtypes → identical bytes. Throws before anything is
 * written when one file would pass protobuf's 2 GiB limit (no external data).
 */
export async function buildModelFiles(
  preset: ModelPreset,
  seed: number,
  dtypes: readonly GeneratedDtype[] = DEFAULT_DTYPES,
): Promise<OutputFile[]> {
  validatePreset(preset);
  if (dtypes.length === 0) throw new Error('at least one dtype is needed');
  const w = new WeightSource(seed);
  const onnx: OutputFile[] = [];
  for (const dtype of dtypes) {
    if (!isGeneratedDtype(dtype)) throw new Error(`the generator does not write dtype "${String(dtype)}"`);
    for (const [session, build] of Object.entries(BUILDERS) as [SessionFile, (typeof BUILDERS)[SessionFile]][]) {
      const path = onnxFileName(session, dtype);
      const data = build(preset, w, GENERATED_DTYPES[dtype]);
      if (data.byteLength > PROTOBUF_LIMIT_BYTES) {
        throw new Error(
          `${path} would be ${(data.byteLength / 1e9).toFixed(2)} GB, over protobuf's 2 GiB limit for one ONNX file ` +
            `(the generator does not write external data); choose a smaller dtype such as q4 or fp16`,
        );
      }
      onnx.push({ path, data });
    }
  }
  return [
    { path: 'config.json', data: json(configJson(preset)) },
    { path: 'generation_config.json', data: json(generationConfigJson()) },
    { path: 'preprocessor_config.json', data: json(preprocessorConfigJson(preset)) },
    { path: 'processor_config.json', data: json(processorConfigJson(preset)) },
    { path: 'tokenizer_config.json', data: json(tokenizerConfigJson(preset)) },
    { path: 'tokenizer.json', data: await tokenizerJson() },
    ...onnx,
  ];
}

export async function generateModel(opts: GenerateModelOptions): Promise<void> {
  const preset: ModelPreset | undefined = Object.hasOwn(PRESETS, opts.preset) ? PRESETS[opts.preset] : undefined;
  if (!preset) throw new Error(`unknown preset "${String(opts.preset)}" (known: ${Object.keys(PRESETS).join(', ')})`);
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new Error(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  const files = await buildModelFiles(preset, seed, opts.dtypes ?? DEFAULT_DTYPES);
  await writeFolderAtomically(opts.outDir, files, opts.onFile ? { onFile: opts.onFile } : {});
}
