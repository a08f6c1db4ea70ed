/**
 * Shared helpers for the engine tests: a generated tiny model in a temp folder
 * (one per test file), deterministic test images made with sharp, decoding
 * parameters, a streaming collector and the transformers.js reference run.
 * Test-only: nothing in the product imports this file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AutoModelForImageTextToText, AutoProcessor, env, RawImage, Tensor } from '@huggingface/transformers';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll } from 'vitest';
import type { DecodingParams } from '@fastvlm/contracts';
import { generateModel, TOKEN_IDS } from '../generator/index';
import type { GenerateResult, TokenDelta } from '../types';
import type { ModelConfig } from './model-config';
import { FastVlmPipeline } from './pipeline';

/** Shapes of the scripted sessions the scheduler tests drive: Qwen2's vocabulary, a tiny hidden size, 3 image tokens. */
export const SCRIPTED = { vocab: 151_936, hidden: 4, imageTokens: 3 } as const;

/** The model config of those scripted sessions. */
export function scriptedConfig(numLayers: number): ModelConfig {
  return {
    modelType: 'llava_qwen2',
    imageTokenId: TOKEN_IDS.image,
    hiddenSize: SCRIPTED.hidden,
    numLayers,
    numKvHeads: 1,
    headDim: 2,
    eosTokenIds: [TOKEN_IDS.imEnd],
  };
}

export interface TinyModel {
  /** Temp folder owned by the test file (removed in afterAll). */
  root: string;
  /** The generated model folder inside `root`. */
  dir: string;
}

/**
 * Generates the tiny model with `seed` into a fresh temp folder before the
 * file's tests and removes the folder after them. Read the fields inside tests.
 */
export function useTinyModel(seed = 0): TinyModel {
  const model: TinyModel = { root: '', dir: '' };
  beforeAll(async () => {
    model.root = await mkdtemp(join(tmpdir(), 'fastvlm-engine-'));
    model.dir = join(model.root, `tiny-${seed}`);
    await generateModel({ preset: 'tiny', outDir: model.dir, seed });
  });
  afterAll(async () => {
    if (model.root) await rm(model.root, { recursive: true, force: true });
  });
  return model;
}

/** `useTinyModel` plus a pipeline loaded from it and disposed after the file's tests. */
export function useTinyPipeline(seed = 0): { model: TinyModel; pipeline: () => FastVlmPipeline } {
  const model = useTinyModel(seed);
  let loaded: FastVlmPipeline | undefined;
  beforeAll(async () => {
    loaded = await FastVlmPipeline.load({ model: model.dir, threads: 1 });
  });
  afterAll(async () => {
    await loaded?.dispose();
  });
  const pipeline = (): FastVlmPipeline => {
    if (!loaded) throw new Error('the pipeline is only available inside tests');
    return loaded;
  };
  return { model, pipeline };
}

/** Small deterministic PRNG (LCG) for noisy pixels; same seed, same bytes. */
function bytes(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s >>> 24;
  };
}

function raw(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Sharp {
  const data = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * 3);
  }
  return sharp(data, { raw: { width, height, channels: 3 } });
}

/** Diagonal colour gradient. */
export function gradientPng(width: number, height: number): Promise<Buffer> {
  return raw(width, height, (x, y) => [Math.round((255 * x) / width), Math.round((255 * y) / height), 128]).png().toBuffer();
}

/** Uniform noise, encoded lossily. */
export function noisyJpeg(width: number, height: number, seed: number): Promise<Buffer> {
  const next = bytes(seed);
  return raw(width, height, () => [next(), next(), next()]).jpeg({ quality: 90 }).toBuffer();
}

/** Horizontal stripes of two colours. */
export function stripesPng(width: number, height: number): Promise<Buffer> {
  return raw(width, height, (_x, y) => (Math.floor(y / 8) % 2 === 0 ? [230, 40, 30] : [20, 60, 220])).png().toBuffer();
}

/** Concentric rings. */
export function ringsWebp(width: number, height: number): Promise<Buffer> {
  return raw(width, height, (x, y) => {
    const r = Math.hypot(x - width / 2, y - height / 2);
    const v = Math.floor(r / 12) % 2 === 0 ? 255 : 0;
    return [v, 255 - v, (x * 7) % 256];
  })
    .webp({ quality: 80 })
    .toBuffer();
}

/** One flat colour. */
export function solidPng(width: number, height: number, colour: string): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: colour } }).png().toBuffer();
}

export function greedy(maxTokens: number, stop: string[] = []): DecodingParams {
  return { maxTokens, temperature: 0, topP: 1, stop };
}

export function sampled(maxTokens: number, temperature: number, topP: number, seed?: number): DecodingParams {
  return { maxTokens, temperature, topP, stop: [], ...(seed === undefined ? {} : { seed }) };
}

/** Records every onToken call; `text` is their concatenation. */
export function collector(): { onToken: (d: TokenDelta) => void; deltas: TokenDelta[]; text: () => string } {
  const deltas: TokenDelta[] = [];
  return { onToken: (d) => deltas.push(d), deltas, text: () => deltas.map((d) => d.text).join('') };
}

export interface ReferenceAnswer {
  /** The processor's `input_ids`. */
  promptIds: number[];
  /** Generated ids after the prompt, cut before the first eos. */
  newIds: number[];
  /** `batch_decode` of the generated ids, special tokens skipped. */
  text: string;
}

function idsOf(t: unknown): number[] {
  if (!(t instanceof Tensor)) throw new Error('expected a transformers.js Tensor');
  return Array.from(t.data as BigInt64Array, Number);
}

/**
 * transformers.js on the same folder: LlavaProcessor + FastVLM's `generate()`,
 * greedy, one request per (image, question). Loaded once, disposed by `close`.
 */
export async function transformersReference(modelDir: string): Promise<{
  answer: (image: Uint8Array, question: string, maxNewTokens: number) => Promise<ReferenceAnswer>;
  close: () => Promise<void>;
}> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  const processor = await AutoProcessor.from_pretrained(modelDir);
  const model = await AutoModelForImageTextToText.from_pretrained(modelDir, { dtype: 'fp32', device: 'cpu' });
  const answer = async (image: Uint8Array, question: string, maxNewTokens: number): Promise<ReferenceAnswer> => {
    const prompt = processor.apply_chat_template([{ role: 'user', content: `<image>\n${question}` }], { add_generation_prompt: true });
    const inputs: unknown = await processor(await RawImage.fromBlob(new Blob([new Uint8Array(image)])), prompt);
    if (typeof inputs !== 'object' || inputs === null) throw new Error('processor returned no object');
    const promptIds = idsOf((inputs as Record<string, unknown>).input_ids);
    const out: unknown = await model.generate({ ...inputs, max_new_tokens: maxNewTokens, do_sample: false });
    const all = idsOf(out);
    const generated = all.slice(promptIds.length);
    // The generated config's only eos is <|im_end|> (generation_config.json).
    const end = generated.indexOf(TOKEN_IDS.imEnd);
    const newIds = end === -1 ? generated : generated.slice(0, end);
    const [text = ''] = processor.batch_decode([generated], { skip_special_tokens: true });
    return { promptIds, newIds, text };
  };
  const close = async (): Promise<void> => {
    await model.dispose();
  };
  return { answer, close };
}

/** A result without its timings, which differ from run to run. */
export function answer(r: GenerateResult): Omit<GenerateResult, 'timings'> {
  const { timings: _timings, ...rest } = r;
  return rest;
}
