import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateModel, numImageTokens, PRESETS } from './index.js';

const tiny = PRESETS.tiny;
const L = tiny.text.numLayers;
const ONNX_FILES = ['onnx/vision_encoder.onnx', 'onnx/embed_tokens.onnx', 'onnx/decoder_model_merged.onnx'];
const ALL_FILES = [
  'config.json',
  'generation_config.json',
  'preprocessor_config.json',
  'processor_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  ...ONNX_FILES,
];

let root: string;
let seed0: string;
let seed0Again: string;
let seed1: string;

async function listRelative(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-gen-'));
  seed0 = join(root, 'seed0');
  seed0Again = join(root, 'seed0-again');
  seed1 = join(root, 'seed1');
  await generateModel({ preset: 'tiny', outDir: seed0 });
  await generateModel({ preset: 'tiny', outDir: seed0Again, seed: 0 });
  await generateModel({ preset: 'tiny', outDir: seed1, seed: 1 });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('determinism', () => {
  it('writes byte-identical files for the same seed', async () => {
    const files = await listRelative(seed0);
    expect(await listRelative(seed0Again)).toEqual(files);
    for (const f of files) {
      expect(Buffer.compare(await readFile(join(seed0, f)), await readFile(join(seed0Again, f))), f).toBe(0);
    }
  });

  it('writes different weights for a different seed', async () => {
    for (const f of ONNX_FILES) {
      expect(Buffer.compare(await readFile(join(seed0, f)), await readFile(join(seed1, f))), f).not.toBe(0);
    }
  });

  it('replaces an existing model folder and leaves no temp folders behind', async () => {
    const target = join(root, 'replaced');
    await generateModel({ preset: 'tiny', outDir: target, seed: 1 });
    await generateModel({ preset: 'tiny', outDir: target, seed: 0 });
    const decoder = 'onnx/decoder_model_merged.onnx';
    expect(Buffer.compare(await readFile(join(target, decoder)), await readFile(join(seed0, decoder)))).toBe(0);
    expect((await readdir(root)).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('rejects seeds that are not unsigned 32-bit integers', async () => {
    await expect(generateModel({ preset: 'tiny', outDir: join(root, 'bad'), seed: -1 })).rejects.toThrow(/seed/);
    await expect(generateModel({ preset: 'tiny', outDir: join(root, 'bad'), seed: 1.5 })).rejects.toThrow(/seed/);
  });
});

describe('layout', () => {
  it('writes exactly the files of the FastVLM-0.5B-ONNX export', async () => {
    expect(await listRelative(seed0)).toEqual([...ALL_FILES].sort());
  });

  it('writes a flattened llava_qwen2 config.json', async () => {
    const config = await readJson(join(seed0, 'config.json'));
    expect(config).toMatchObject({
      architectures: ['LlavaQwen2ForCausalLM'],
      model_type: 'llava_qwen2',
      image_token_index: 151646,
      hidden_size: tiny.text.hiddenSize,
      intermediate_size: tiny.text.intermediateSize,
      num_hidden_layers: L,
      num_attention_heads: tiny.text.numHeads,
      num_key_value_heads: tiny.text.numKvHeads,
      head_dim: tiny.text.headDim,
      vocab_size: 151936,
      bos_token_id: 151643,
      eos_token_id: 151645,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
      mm_hidden_size: tiny.vision.mmHiddenSize,
      mm_projector_type: 'mlp2x_gelu',
    });
    expect(await readJson(join(seed0, 'generation_config.json'))).toEqual({ bos_token_id: 151643, eos_token_id: 151645 });
  });

  it('declares exactly the ONNX input and output names transformers.js feeds and reads', async () => {
    const names = async (f: string) => {
      const s = await ort.InferenceSession.create(join(seed0, f));
      const io = { inputs: [...s.inputNames], outputs: [...s.outputNames] };
      await s.release();
      return io;
    };
    expect(await names('onnx/vision_encoder.onnx')).toEqual({ inputs: ['pixel_values'], outputs: ['image_features'] });
    expect(await names('onnx/embed_tokens.onnx')).toEqual({ inputs: ['input_ids'], outputs: ['inputs_embeds'] });
    const layers = Array.from({ length: L }, (_, i) => i);
    expect(await names('onnx/decoder_model_merged.onnx')).toEqual({
      inputs: [
        'inputs_embeds',
        'attention_mask',
        'position_ids',
        ...layers.flatMap((i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]),
      ],
      outputs: ['logits', ...layers.flatMap((i) => [`present.${i}.key`, `present.${i}.value`])],
    });
  });

  it('declares cache dims that transformers.js can turn into an empty first-step cache', async () => {
    const s = await ort.InferenceSession.create(join(seed0, 'onnx/decoder_model_merged.onnx'));
    const past = s.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
    await s.release();
    expect(past && 'shape' in past ? past.shape : undefined).toEqual([
      'batch_size',
      tiny.text.numKvHeads,
      'past_sequence_length',
      tiny.text.headDim,
    ]);
  });

  it('encodes each image into (S/P)^2 feature rows of the text hidden size', async () => {
    const { imageSize: S } = tiny.vision;
    const s = await ort.InferenceSession.create(join(seed0, 'onnx/vision_encoder.onnx'));
    const pixels = new Float32Array(2 * 3 * S * S).map((_, i) => (i % 97) / 96);
    const out = await s.run({ pixel_values: new ort.Tensor('float32', pixels, [2, 3, S, S]) });
    await s.release();
    expect(numImageTokens(tiny.vision)).toBe(16);
    expect(out.image_features?.dims).toEqual([2, 16, tiny.text.hiddenSize]);
  });

  it('matches the processor config to the encoder (16 image tokens for a 64 px image and 16 px patches)', async () => {
    expect(await readJson(join(seed0, 'processor_config.json'))).toEqual({
      image_token: '<image>',
      num_additional_image_tokens: 0,
      patch_size: 16,
      processor_class: 'LlavaProcessor',
    });
    expect(await readJson(join(seed0, 'preprocessor_config.json'))).toMatchObject({
      image_processor_type: 'CLIPImageProcessor',
      size: { shortest_edge: 64 },
      crop_size: { height: 64, width: 64 },
    });
  });
});

describe('size', () => {
  it('keeps the tiny model under 12 MB', async () => {
    let total = 0;
    for (const f of await listRelative(seed0)) total += (await stat(join(seed0, f))).size;
    expect(total).toBeLessThan(12_000_000);
  });
});
