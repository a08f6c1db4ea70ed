import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '@fastvlm/contracts';
import { generateModel, PRESETS } from '../generator/index';
import type { DtypeMap } from './dtype';
import {
  asInput,
  cudaProviderProblem,
  executionProviders,
  float16Input,
  ioElementTypes,
  onnxruntimeBinDir,
  openSessions,
  type ModelSessions,
} from './sessions';

const { numLayers: L, numKvHeads: KV, headDim: D } = PRESETS.tiny.text;
const MIXED: DtypeMap = { vision_encoder: 'q4', embed_tokens: 'fp16', decoder_model_merged: 'q4f16' };

let root: string;
let dir: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-sessions-'));
  dir = join(root, 'model');
  await generateModel({ preset: 'tiny', outDir: dir, seed: 2, dtypes: ['q4', 'fp16', 'q4f16'] });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<AppError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof AppError)) throw new Error(`expected an AppError, got ${String(err)}`);
  return err;
}

const cudaInstalled = await cudaProviderProblem().then((p) => p === null);

describe('openSessions', () => {
  let sessions: ModelSessions | undefined;
  afterAll(async () => {
    await sessions?.release();
  });

  it('opens each session in the dtype the map gives it and reports its element types', async () => {
    sessions = await openSessions(dir, { threads: 1, dtypes: MIXED });
    expect(ioElementTypes(sessions.vision)).toEqual({
      inputs: { pixel_values: 'float32' },
      outputs: { image_features: 'float32' },
    });
    expect(ioElementTypes(sessions.embed).outputs).toEqual({ inputs_embeds: 'float16' });
    const decoder = ioElementTypes(sessions.decoder);
    expect(decoder.inputs).toMatchObject({ inputs_embeds: 'float16', attention_mask: 'int64', 'past_key_values.0.key': 'float16' });
    expect(decoder.outputs).toMatchObject({ logits: 'float16', [`present.${L - 1}.value`]: 'float16' });
  });

  it('feeds float16 outputs back as inputs through asInput (the KV cache of a q4f16 decoder)', async () => {
    if (!sessions) throw new Error('sessions not opened');
    const i64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);
    const embeds = (await sessions.embed.run({ input_ids: i64([151644, 872, 198]) })).inputs_embeds;
    if (!embeds) throw new Error('no inputs_embeds');
    const feeds: Record<string, ort.Tensor> = { inputs_embeds: asInput(embeds), attention_mask: i64([1, 1, 1]), position_ids: i64([0, 1, 2]) };
    for (let i = 0; i < L; i++) for (const k of ['key', 'value']) feeds[`past_key_values.${i}.${k}`] = float16Input(new Uint16Array(0), [1, KV, 0, D]);
    const first = await sessions.decoder.run(feeds);
    const next: Record<string, ort.Tensor> = { attention_mask: i64([1, 1, 1, 1]), position_ids: i64([3]) };
    next.inputs_embeds = asInput((await sessions.embed.run({ input_ids: i64([30]) })).inputs_embeds ?? embeds);
    for (let i = 0; i < L; i++) {
      for (const k of ['key', 'value']) {
        const present = first[`present.${i}.${k}`];
        if (!present) throw new Error('no present');
        next[`past_key_values.${i}.${k}`] = asInput(present);
      }
    }
    const second = await sessions.decoder.run(next);
    expect(second['present.0.key']?.dims).toEqual([1, KV, 4, D]);
    expect(second.logits?.type).toBe('float16');
  });

  it('names the file a dtype needs when the folder lacks it', async () => {
    const err = await rejection(openSessions(dir, { threads: 1, dtypes: { ...MIXED, decoder_model_merged: 'int8' } }));
    expect(err.code).toBe('model_load_failed');
    expect(err.message).toContain('onnx/decoder_model_merged_int8.onnx');
  });
});

describe('devices', () => {
  it('maps cpu to the CPU provider and cuda to CUDA with CPU for the rest', () => {
    expect(executionProviders('cpu')).toEqual(['cpu']);
    expect(executionProviders('cuda')).toEqual(['cuda', 'cpu']);
  });

  it('explains what is missing for CUDA and how to install it', async () => {
    const empty = join(root, 'no-binaries');
    const problem = await cudaProviderProblem(empty, 'linux/x64');
    expect(problem).toContain('libonnxruntime_providers_cuda.so');
    expect(problem).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12');
    expect(problem).toMatch(/CUDA 12 and cuDNN 9/);
    expect(await cudaProviderProblem(empty, 'darwin/arm64')).toMatch(/no CUDA execution provider on darwin\/arm64/);
  });

  it.skipIf(cudaInstalled)('refuses device cuda with model_load_failed when onnxruntime-node was installed without CUDA', async () => {
    await expect(access(join(onnxruntimeBinDir(), 'onnxruntime_binding.node'))).resolves.toBeUndefined();
    const err = await rejection(openSessions(dir, { threads: 1, dtypes: MIXED, device: 'cuda' }));
    expect(err.code).toBe('model_load_failed');
    expect(err.message).toMatch(/CUDA execution provider is not installed.*libonnxruntime_providers_cuda\.so/);
  });
});
