import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { configJson, preprocessorConfigJson, processorConfigJson } from './configs.js';
import { buildModelFiles, numImageTokens, PRESETS, visionMacs } from './index.js';
import { concatChunks } from './proto-stream.js';
import { WeightSource } from './rng.js';
import { GENERATED_DTYPES } from './variants.js';
import { buildVisionEncoder } from './vision-encoder.js';

const real = PRESETS['fastvlm-0.5b'];
const MB = 1e6;

/** File sizes of one dtype, from the up-front sizing; no weight is drawn. */
async function sizes(dtype: 'fp32' | 'fp16' | 'q4'): Promise<Record<string, number>> {
  const files = await buildModelFiles(real, 0, [dtype]);
  return Object.fromEntries(
    files.flatMap((f) => (typeof f.data === 'object' && !(f.data instanceof Uint8Array) ? [[f.path, f.data.byteLength]] : [])),
  );
}

describe('the fastvlm-0.5b preset', () => {
  it('writes the real model\'s config values', () => {
    expect(configJson(real)).toMatchObject({
      architectures: ['LlavaQwen2ForCausalLM'],
      model_type: 'llava_qwen2',
      image_token_index: 151646,
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      head_dim: 64,
      vocab_size: 151936,
      rope_theta: 1000000,
      eos_token_id: 151645,
      mm_hidden_size: 3072,
      mm_projector_type: 'mlp2x_gelu',
    });
    expect(processorConfigJson(real)).toMatchObject({ patch_size: 64, image_token: '<image>' });
    expect(numImageTokens(real.vision)).toBe(256);
    expect(preprocessorConfigJson(real)).toMatchObject({
      size: { shortest_edge: 1024 },
      crop_size: { height: 1024, width: 1024 },
      image_mean: [0, 0, 0],
      image_std: [1, 1, 1],
    });
  });

  it('sizes its files like the real export (decoder q4 ≈ 317 MB, fp16 ≈ 992 MB, embed_tokens fp16 ≈ 272 MB)', async () => {
    const q4 = await sizes('q4');
    const fp16 = await sizes('fp16');
    expect(q4['onnx/decoder_model_merged_q4.onnx']! / MB).toBeGreaterThan(280);
    expect(q4['onnx/decoder_model_merged_q4.onnx']! / MB).toBeLessThan(350);
    // 494.0 M decoder parameters (24 layers + norm + lm_head), 2 bytes each.
    expect(fp16['onnx/decoder_model_merged_fp16.onnx']! / MB).toBeCloseTo(988, -1);
    expect(fp16['onnx/embed_tokens_fp16.onnx']! / MB).toBeCloseTo(272, 0);
    const total = Object.values(q4).reduce((a, b) => a + b, 0);
    expect(total / MB).toBeLessThan(500);
  });

  it('fits fp32 under protobuf\'s 2 GiB file limit and refuses a preset whose file would not', async () => {
    expect((await sizes('fp32'))['onnx/decoder_model_merged.onnx']).toBeLessThan(2 ** 31 - 1);
    const deeper = { ...real, text: { ...real.text, numLayers: 30 } };
    await expect(buildModelFiles(deeper, 0, ['fp32'])).rejects.toThrow(/decoder_model_merged\.onnx would be 2\.3\d GB, over protobuf's 2 GiB limit.*q4 or fp16/);
  });

  it('costs a few GFLOPs per 1024 px image in the vision encoder', () => {
    const gflops = (2 * visionMacs(real)) / 1e9;
    expect(gflops).toBeGreaterThan(4);
    expect(gflops).toBeLessThan(10);
  });

  it('encodes a 1024 px image into 256 feature rows of 896', async () => {
    const model = concatChunks(buildVisionEncoder(real, new WeightSource(0), GENERATED_DTYPES.q4));
    const session = await ort.InferenceSession.create(model);
    try {
      const pixels = new Float32Array(3 * 1024 * 1024).map((_, i) => (i % 251) / 250);
      const out = await session.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, 1024, 1024]) });
      expect(out.image_features?.dims).toEqual([1, 256, 896]);
      expect((out.image_features?.data as Float32Array).every(Number.isFinite)).toBe(true);
    } finally {
      await session.release();
    }
  });
});
