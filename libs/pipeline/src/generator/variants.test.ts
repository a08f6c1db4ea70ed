import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onnxFileName, type SessionFile } from '../engine/dtype.js';
import { asInput, float16Input } from '../engine/sessions.js';
import { generateModel, PRESETS, type GeneratedDtype } from './index.js';

const { numLayers: L, numKvHeads: KV, headDim: D, hiddenSize: H, vocabSize: V } = PRESETS.tiny.text;
const S = PRESETS.tiny.vision.imageSize;

/** Activation type of each variant: the element type of every float tensor crossing a graph boundary. */
const ACT: Record<GeneratedDtype, 'float32' | 'float16'> = {
  fp32: 'float32',
  fp16: 'float16',
  q4: 'float32',
  q4f16: 'float16',
  int8: 'float32',
  uint8: 'float32',
  quantized: 'float32',
};
const DTYPES = Object.keys(ACT) as GeneratedDtype[];

/**
 * Largest |cached - uncached| logit difference each precision may show (logits
 * spread with std ≈ 6). float16 rounds activations to 3 significant digits; the
 * 8-bit variants quantize activations per tensor, so one new token and a whole
 * prompt see different activation scales.
 */
const CACHE_TOLERANCE: Record<GeneratedDtype, number> = {
  fp32: 1e-4,
  q4: 1e-4,
  fp16: 0.1,
  q4f16: 0.1,
  int8: 1,
  uint8: 1,
  quantized: 1,
};

let root: string;
const model = () => join(root, 'tiny');

function open(session: SessionFile, dtype: GeneratedDtype): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(join(model(), onnxFileName(session, dtype)));
}

function toFloat32(t: ort.Tensor | undefined): Float32Array {
  if (!t) throw new Error('missing tensor');
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type !== 'float16') throw new Error(`not a float tensor: ${t.type}`);
  const d = t.data as Uint16Array | Float16Array;
  return Float32Array.from(d instanceof Float16Array ? d : new Float16Array(d.buffer, d.byteOffset, d.length));
}

function floatTensor(type: 'float32' | 'float16', values: Float32Array, dims: number[]): ort.Tensor {
  return type === 'float32' ? new ort.Tensor('float32', values, dims) : float16Input(Float16Array.from(values), dims);
}

/** Outputs fed back as inputs (embeddings, the KV cache) go through asInput: see float16Input. */
function feedable(t: ort.Tensor | undefined): ort.Tensor {
  if (!t) throw new Error('missing tensor');
  return asInput(t);
}

const i64 = (values: readonly number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function typesOf(s: ort.InferenceSession): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of [...s.inputMetadata, ...s.outputMetadata]) if (m.isTensor) out[m.name] = m.type;
  return out;
}

/** The nodes of a graph, read back from the file. */
async function nodes(session: SessionFile, dtype: GeneratedDtype): Promise<onnxProto.onnx.INodeProto[]> {
  const bytes = await readFile(join(model(), onnxFileName(session, dtype)));
  return onnxProto.onnx.ModelProto.decode(bytes).graph?.node ?? [];
}

const opTypes = async (session: SessionFile, dtype: GeneratedDtype) => new Set((await nodes(session, dtype)).map((n) => n.opType ?? ''));

function intAttr(node: onnxProto.onnx.INodeProto, name: string): number | undefined {
  const a = node.attribute?.find((x) => x.name === name);
  return a?.i === undefined || a.i === null ? undefined : Number(a.i);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-variants-'));
  await generateModel({ preset: 'tiny', outDir: model(), seed: 11, dtypes: DTYPES });
  await generateModel({ preset: 'small', outDir: join(root, 'small'), seed: 11, dtypes: ['fp32', 'q4'] });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe.each(DTYPES)('the %s variant', (dtype) => {
  const act = ACT[dtype];

  it('declares the export I/O names with its element types (pixel_values stays float32)', async () => {
    const [vision, embed, decoder] = await Promise.all([open('vision_encoder', dtype), open('embed_tokens', dtype), open('decoder_model_merged', dtype)]);
    try {
      expect(typesOf(vision)).toEqual({ pixel_values: 'float32', image_features: act });
      expect(typesOf(embed)).toEqual({ input_ids: 'int64', inputs_embeds: act });
      const cache = Object.fromEntries(
        range(L).flatMap((i) => ['key', 'value'].flatMap((k) => [[`past_key_values.${i}.${k}`, act], [`present.${i}.${k}`, act]])),
      );
      expect(typesOf(decoder)).toEqual({ inputs_embeds: act, attention_mask: 'int64', position_ids: 'int64', logits: act, ...cache });
    } finally {
      await Promise.all([vision.release(), embed.release(), decoder.release()]);
    }
  });

  it('encodes an image into finite feature rows', async () => {
    const vision = await open('vision_encoder', dtype);
    const pixels = new Float32Array(3 * S * S).map((_, i) => (i % 89) / 88);
    const out = await vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, S, S]) });
    await vision.release();
    expect(out.image_features?.dims).toEqual([1, 16, H]);
    expect(toFloat32(out.image_features).every(Number.isFinite)).toBe(true);
  });

  it('gives the same logits decoding from its KV cache as in one full pass', async () => {
    const [embed, decoder] = await Promise.all([open('embed_tokens', dtype), open('decoder_model_merged', dtype)]);
    const ids = [151644, 8948, 198, 151646, 151646, 3838, 374, 419, 30, 151645];
    const N = ids.length;
    const run = async (from: number, to: number, cache: Record<string, ort.Tensor>) => {
      const embeds = (await embed.run({ input_ids: i64(ids.slice(from, to), [1, to - from]) })).inputs_embeds;
      if (embeds?.type !== act) throw new Error(`inputs_embeds is ${embeds?.type}`);
      const out = await decoder.run({ inputs_embeds: feedable(embeds), attention_mask: i64(new Array<number>(to).fill(1), [1, to]), position_ids: i64(range(N).slice(from, to), [1, to - from]), ...cache });
      const next: Record<string, ort.Tensor> = {};
      for (let i = 0; i < L; i++) {
        for (const k of ['key', 'value']) {
          next[`past_key_values.${i}.${k}`] = feedable(out[`present.${i}.${k}`]);
        }
      }
      return { logits: toFloat32(out.logits), cache: next };
    };
    const empty: Record<string, ort.Tensor> = {};
    for (let i = 0; i < L; i++) for (const k of ['key', 'value']) empty[`past_key_values.${i}.${k}`] = floatTensor(act, new Float32Array(0), [1, KV, 0, D]);
    try {
      const full = await run(0, N, empty);
      let step = await run(0, N - 3, empty);
      let worst = 0;
      for (let pos = N - 3; pos < N; pos++) {
        step = await run(pos, pos + 1, step.cache);
        const a = full.logits.subarray(pos * V, (pos + 1) * V);
        for (let j = 0; j < V; j++) worst = Math.max(worst, Math.abs((a[j] ?? 0) - (step.logits[j] ?? 0)));
      }
      expect(step.cache['past_key_values.0.key']?.dims).toEqual([1, KV, N, D]);
      expect(worst).toBeLessThan(CACHE_TOLERANCE[dtype]);
    } finally {
      await Promise.all([embed.release(), decoder.release()]);
    }
  });
});

describe('quantized graphs', () => {
  it('run every decoder-layer and projector MatMul of the q4 variants as MatMulNBits with bits 4, block 32', async () => {
    for (const dtype of ['q4', 'q4f16'] as const) {
      const q4 = (await nodes('decoder_model_merged', dtype)).filter((n) => n.opType === 'MatMulNBits');
      // q, k, v, o, gate, up, down per layer.
      expect(q4).toHaveLength(7 * L);
      for (const n of q4) {
        expect(n.domain).toBe('com.microsoft');
        expect([intAttr(n, 'bits'), intAttr(n, 'block_size')]).toEqual([4, 32]);
      }
      const projector = (await nodes('vision_encoder', dtype)).filter((n) => n.opType === 'MatMulNBits');
      expect(projector).toHaveLength(2);
    }
  });

  it('run the 8-bit variants through DynamicQuantizeLinear + MatMulInteger', async () => {
    for (const dtype of ['int8', 'uint8', 'quantized'] as const) {
      const ops = await opTypes('decoder_model_merged', dtype);
      expect(ops).toContain('DynamicQuantizeLinear');
      expect(ops).toContain('MatMulInteger');
    }
  });

  it('shrink the decoder of a wider preset to under a third of its fp32 size with q4', async () => {
    const size = async (dtype: GeneratedDtype) => (await stat(join(root, 'small', onnxFileName('decoder_model_merged', dtype)))).size;
    const [fp32, q4] = await Promise.all([size('fp32'), size('q4')]);
    expect(q4 / fp32).toBeLessThan(1 / 3);
  });
});
