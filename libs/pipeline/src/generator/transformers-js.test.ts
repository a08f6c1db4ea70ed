import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForImageTextToText, AutoProcessor, env, RawImage, Tensor } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFileName, type SessionFile } from '../engine/dtype.js';
import { float16Input } from '../engine/sessions.js';
import { generateModel, numImageTokens, PRESETS, TOKEN_IDS, type GeneratedDtype } from './index.js';

/** fp32, plus one weight-quantized and one half-precision variant (float16 I/O and KV cache). */
const DTYPES = ['fp32', 'q4', 'fp16'] as const satisfies readonly GeneratedDtype[];

const IMAGE_TOKENS = numImageTokens(PRESETS.tiny.vision);

let root: string;
let modelDir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-tjs-'));
  modelDir = join(root, 'fastvlm-tiny');
  await generateModel({ preset: 'tiny', outDir: modelDir, seed: 3, dtypes: DTYPES });
  // Local files only. An absolute path is not a valid hub id, so transformers.js
  // reads `${modelDir}/<file>` directly (localModelPath is not consulted).
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function testImage(): Promise<RawImage> {
  const png = await sharp({ create: { width: 96, height: 80, channels: 3, background: { r: 200, g: 40, b: 90 } } })
    .composite([{ input: { create: { width: 40, height: 30, channels: 3, background: '#1080f0' } }, left: 10, top: 20 }])
    .png()
    .toBuffer();
  return RawImage.fromBlob(new Blob([new Uint8Array(png)], { type: 'image/png' }));
}

/** Float values of a float32 or float16 output. */
function floats(t: ort.Tensor | undefined): Float32Array {
  if (t?.type === 'float32') return t.data as Float32Array;
  if (t?.type === 'float16') {
    const d = t.data as Uint16Array | Float16Array;
    return Float32Array.from(d instanceof Float16Array ? d : new Float16Array(d.buffer, d.byteOffset, d.length));
  }
  throw new Error(`expected a float tensor, got ${t?.type}`);
}

/**
 * The first greedy token computed with onnxruntime directly: image rows replace
 * the `<image>` embeddings in order, positions 0..n-1, empty cache. Agreement
 * shows transformers.js drives the three graphs the way they were built for.
 */
async function firstTokenByHand(ids: number[], pixels: Tensor, dtype: GeneratedDtype): Promise<number> {
  const open = (s: SessionFile) => ort.InferenceSession.create(join(modelDir, onnxFileName(s, dtype)));
  const [vision, embed, decoder] = await Promise.all([open('vision_encoder'), open('embed_tokens'), open('decoder_model_merged')]);
  try {
    const { hiddenSize: H, numLayers, numKvHeads, headDim, vocabSize } = PRESETS.tiny.text;
    const n = ids.length;
    const feats = floats((await vision.run({ pixel_values: new ort.Tensor('float32', pixels.data as Float32Array, pixels.dims) })).image_features);
    const int64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, n]);
    const embedsOut = (await embed.run({ input_ids: int64(ids) })).inputs_embeds;
    const half = embedsOut?.type === 'float16';
    const embeds = new Float32Array(floats(embedsOut));
    let row = 0;
    ids.forEach((id, pos) => {
      if (id === TOKEN_IDS.image) embeds.set(feats.subarray(row * H, ++row * H), pos * H);
    });
    const float = (values: Float32Array, dims: number[]) =>
      half ? float16Input(Float16Array.from(values), dims) : new ort.Tensor('float32', values, dims);
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: float(embeds, [1, n, H]),
      attention_mask: int64(ids.map(() => 1)),
      position_ids: int64(ids.map((_, i) => i)),
    };
    for (let i = 0; i < numLayers; i++) {
      for (const kind of ['key', 'value']) {
        feeds[`past_key_values.${i}.${kind}`] = float(new Float32Array(0), [1, numKvHeads, 0, headDim]);
      }
    }
    const logits = floats((await decoder.run(feeds)).logits);
    const last = logits.subarray((n - 1) * vocabSize, n * vocabSize);
    let best = 0;
    for (let j = 1; j < last.length; j++) if ((last[j] ?? 0) > (last[best] ?? 0)) best = j;
    return best;
  } finally {
    await Promise.all([vision.release(), embed.release(), decoder.release()]);
  }
}

/** The processor's untyped result, checked: tensors for the ids, mask and pixels. */
function processorOutputs(raw: unknown): { input_ids: Tensor; attention_mask: Tensor; pixel_values: Tensor } {
  if (typeof raw !== 'object' || raw === null) throw new Error('processor returned no object');
  const { input_ids, attention_mask, pixel_values } = raw as Record<string, unknown>;
  if (!(input_ids instanceof Tensor && attention_mask instanceof Tensor && pixel_values instanceof Tensor)) {
    throw new Error('processor output lacks input_ids / attention_mask / pixel_values tensors');
  }
  return { input_ids, attention_mask, pixel_values };
}

function idsOf(t: unknown): number[] {
  if (!(t instanceof Tensor)) throw new Error('expected a Tensor');
  return Array.from(t.data as BigInt64Array, Number);
}

describe.each(DTYPES)('transformers.js with dtype %s', (dtype) => {
  it('loads the generated folder unchanged and generates greedily from an image and a chat prompt', async () => {
    const processor = await AutoProcessor.from_pretrained(modelDir);
    const model = await AutoModelForImageTextToText.from_pretrained(modelDir, { dtype, device: 'cpu' });
    try {
      const prompt = processor.apply_chat_template([{ role: 'user', content: '<image>\nWhat is this?' }], {
        add_generation_prompt: true,
      });
      expect(prompt).toBe(
        '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
          '<|im_start|>user\n<image>\nWhat is this?<|im_end|>\n<|im_start|>assistant\n',
      );
      const inputs = processorOutputs(await processor(await testImage(), prompt));
      const promptIds = idsOf(inputs.input_ids);
      expect(promptIds[0]).toBe(TOKEN_IDS.imStart);
      expect(promptIds.filter((id) => id === TOKEN_IDS.image)).toHaveLength(IMAGE_TOKENS);
      expect(inputs.pixel_values.dims).toEqual([1, 3, 64, 64]);

      const run = async () => idsOf(await model.generate({ ...inputs, max_new_tokens: 8, do_sample: false }));
      const first = await run();
      expect(first.slice(0, promptIds.length)).toEqual(promptIds);
      const generated = first.slice(promptIds.length);
      // Fixed seed: eos (1 id in 151936) does not come up, so all 8 tokens are generated.
      expect(generated).toHaveLength(8);
      expect(await run()).toEqual(first);
      expect(generated[0]).toBe(await firstTokenByHand(promptIds, inputs.pixel_values, dtype));
    } finally {
      await model.dispose();
    }
  });
});
