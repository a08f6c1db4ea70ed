import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { AutoImageProcessor, RawImage } from '@huggingface/transformers';
import { AppError } from '@fastvlm/contracts';
import { generateModel } from '../generator/index';
import { loadImageProcessorConfig, parseImageProcessorConfig } from './image-processor-config';
import { preprocessImage } from './preprocess';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fastvlm-preprocess-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function loadError(json: string): Promise<AppError> {
  const dir = await mkdtemp(join(root, 'cfg-'));
  await writeFile(join(dir, 'preprocessor_config.json'), json);
  const error = await loadImageProcessorConfig(dir).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe('model_load_failed');
  expect((error as AppError).message).toContain(join(dir, 'preprocessor_config.json'));
  return error as AppError;
}

describe('loadImageProcessorConfig', () => {
  it("the generated model's config gives transformers.js's pixels (AutoImageProcessor.from_pretrained, exact)", async () => {
    const dir = join(root, 'tiny');
    await generateModel({ preset: 'tiny', outDir: dir, seed: 0 });
    const cfg = await loadImageProcessorConfig(dir);
    expect(cfg).toEqual({
      resize: { kind: 'edges', shortestEdge: 64, longestEdge: undefined },
      resample: 'bicubic',
      centerCrop: { width: 64, height: 64 },
      rescaleFactor: 1 / 255,
      normalize: { mean: [0, 0, 0], std: [1, 1, 1] },
    });
    const jpeg = await sharp({ create: { width: 123, height: 77, channels: 3, background: '#a0c040' } })
      .composite([{ input: Buffer.from('<svg width="60" height="40"><circle cx="30" cy="20" r="15" fill="#123456"/></svg>'), left: 20, top: 10 }])
      .jpeg()
      .toBuffer();
    const processor = await AutoImageProcessor.from_pretrained(dir);
    const { pixel_values } = await processor._call(await RawImage.fromBlob(new Blob([new Uint8Array(jpeg)])));
    expect(Array.from(await preprocessImage(jpeg, cfg))).toEqual(Array.from(pixel_values.data as Float32Array));
  });

  it('missing file', async () => {
    const error = await loadImageProcessorConfig(join(root, 'nowhere')).catch((e: unknown) => e);
    expect((error as AppError).code).toBe('model_load_failed');
    expect((error as AppError).message).toContain('preprocessor_config.json');
  });

  it('invalid JSON', async () => {
    expect((await loadError('{ "size": ')).message).toMatch(/not valid JSON/);
  });

  it('wrong types name the field', async () => {
    expect((await loadError('{ "size": { "shortest_edge": "big" } }')).message).toMatch(/size/);
    expect((await loadError('{ "image_mean": [0.5, 0.5] }')).message).toMatch(/image_mean/);
  });

  it('options that would silently change pixels are refused', async () => {
    expect((await loadError('{ "size": 224, "do_pad": true }')).message).toMatch(/do_pad/);
    expect((await loadError('{ "size": 224, "size_divisibility": 32 }')).message).toMatch(/size_divisibility/);
    expect((await loadError('{ "do_center_crop": true }')).message).toMatch(/crop_size/);
    expect((await loadError('{ "size": 224, "do_normalize": true }')).message).toMatch(/image_mean/);
  });
});

describe('parseImageProcessorConfig defaults follow transformers.js', () => {
  it('no size means no resize; rescale on by default; normalize off unless asked', () => {
    expect(parseImageProcessorConfig({})).toEqual({
      resize: null,
      resample: 'bilinear',
      centerCrop: null,
      rescaleFactor: 1 / 255,
      normalize: null,
    });
  });

  it('an integer size fits the image inside size×size (transformers.js reading)', () => {
    expect(parseImageProcessorConfig({ size: 224, resample: 4 })).toMatchObject({
      resize: { kind: 'edges', shortestEdge: 224, longestEdge: 224 },
      resample: 'bilinear',
    });
  });

  it('scalar mean/std apply to every channel; crop_size may be an integer', () => {
    expect(parseImageProcessorConfig({ do_normalize: true, mean: 0.5, std: 0.25, do_center_crop: true, crop_size: 32, do_rescale: false })).toMatchObject({
      normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25] },
      centerCrop: { width: 32, height: 32 },
      rescaleFactor: null,
    });
  });
});
