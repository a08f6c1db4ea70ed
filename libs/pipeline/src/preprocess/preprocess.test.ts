import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { CLIPImageProcessor, RawImage } from '@huggingface/transformers';
import { AppError } from '@fastvlm/contracts';
import { parseImageProcessorConfig } from './image-processor-config';
import { preprocessImage, preprocessImageDetailed, resizeOutputSize, type PreprocessOptions } from './preprocess';

/** The tiny preset's preprocessor_config.json (FastVLM's, with S = 64). */
const TINY_JSON = {
  image_processor_type: 'CLIPImageProcessor',
  processor_class: 'LlavaProcessor',
  do_resize: true,
  size: { shortest_edge: 64 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 64, width: 64 },
  do_rescale: true,
  rescale_factor: 0.00392156862745098,
  do_normalize: false,
  image_mean: [0, 0, 0],
  image_std: [1, 1, 1],
  do_convert_rgb: true,
};

/** Exercises normalisation, a non-square crop and bilinear. */
const CLIP_LIKE_JSON = {
  image_processor_type: 'CLIPImageProcessor',
  size: { shortest_edge: 40 },
  resample: 2,
  do_center_crop: true,
  crop_size: { height: 40, width: 36 },
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
};

const REAL_JSON = { ...TINY_JSON, size: { shortest_edge: 1024 }, crop_size: { height: 1024, width: 1024 } };

/** A crop larger than every resized test image in both directions, so the crop pads with black. */
const PADDING_JSON = { ...CLIP_LIKE_JSON, size: { shortest_edge: 30 }, crop_size: { height: 100, width: 97 }, resample: 0 };

const CONFIGS = {
  tiny: TINY_JSON,
  'clip-like': CLIP_LIKE_JSON,
  'padding crop': PADDING_JSON,
  'real (S=1024)': REAL_JSON,
} as const;

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pixels(width: number, height: number, channels: 1 | 2 | 3 | 4, f: (x: number, y: number, c: number) => number) {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < channels; c++) data[(y * width + x) * channels + c] = f(x, y, c);
    }
  }
  return sharp(data, { raw: { width, height, channels } });
}

const noise = rng(42);
const IMAGES: Record<string, () => Promise<Buffer>> = {
  '64×48 RGB gradient PNG': () => pixels(64, 48, 3, (x, y, c) => (x * 4 + y * 5 * c) & 255).png().toBuffer(),
  '300×200 noisy JPEG': () =>
    pixels(300, 200, 3, (x, y, c) => (x + y * c + Math.floor(noise() * 90)) & 255)
      .jpeg({ quality: 85 })
      .toBuffer(),
  '50×90 opaque RGBA PNG': () => pixels(50, 90, 4, (x, y, c) => (c === 3 ? 255 : (x * 5 + y * 3 * c) & 255)).png().toBuffer(),
  '40×30 grayscale PNG': () =>
    pixels(40, 30, 1, (x, y) => (x * 6 + y * 2) & 255)
      .toColourspace('b-w')
      .png()
      .toBuffer(),
  '10×10 tiny PNG (upscaled)': () => pixels(10, 10, 3, (x, y, c) => (x * 25 + y * 11 + c * 70) & 255).png().toBuffer(),
  '33×65 palette PNG': () => pixels(33, 65, 3, (x, y, c) => ((x >> 2) * 40 + (y >> 3) * 20 + c * 50) & 255).png({ palette: true }).toBuffer(),
  '20×24 16-bit RGB PNG': () => {
    const data = new Uint16Array(20 * 24 * 3).map((_, i) => (i * 2719) & 0xffff);
    return sharp(data, { raw: { width: 20, height: 24, channels: 3 } }).toColourspace('rgb16').png().toBuffer();
  },
  '30×20 CMYK JPEG': () => pixels(30, 20, 3, (x, y, c) => (x * 8 + y * 9 + c * 60) & 255).toColourspace('cmyk').jpeg().toBuffer(),
  '31×17 WebP': () => pixels(31, 17, 3, (x, y, c) => (x * 7 + y * 13 * c) & 255).webp({ quality: 80 }).toBuffer(),
  '26×26 GIF': () => pixels(26, 26, 3, (x, y, c) => ((x >> 1) * 20 + (y >> 1) * 9 * c) & 255).gif().toBuffer(),
  '24×24 JPEG with a Display P3 ICC profile': () =>
    pixels(24, 24, 3, (x, y, c) => (x * 10 + y * 7 + c * 40) & 255)
      .withIccProfile('p3')
      .jpeg()
      .toBuffer(),
  '40×20 JPEG with EXIF orientation 6': () => orientedJpeg(),
};

function orientedJpeg(): Promise<Buffer> {
  return pixels(40, 20, 3, (x, y, c) => (x < 20 ? [220, 30, 30][c] ?? 0 : [30, 30, 220][c] ?? 0) ^ (y * 3))
    .jpeg({ quality: 90 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
}

async function reference(bytes: Uint8Array, json: object): Promise<{ data: Float32Array; dims: number[] }> {
  const processor = new CLIPImageProcessor(json);
  const image = await RawImage.fromBlob(new Blob([new Uint8Array(bytes)]));
  // `_call` is what `processor(image)` runs; it is the typed entry point.
  const { pixel_values } = await processor._call(image);
  return { data: pixel_values.data as Float32Array, dims: pixel_values.dims };
}

/** Bitwise comparison, reporting the first difference instead of a giant diff. */
function expectSameFloats(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const i = a.findIndex((v, k) => v !== e[k]);
  expect(i === -1 ? 'identical' : `first difference at ${i}: ${actual[i]} vs ${expected[i]}`).toBe('identical');
}

describe('preprocessImage matches transformers.js CLIPImageProcessor bit for bit (exact float32 equality)', () => {
  for (const [configName, json] of Object.entries(CONFIGS)) {
    const cfg = parseImageProcessorConfig(json);
    for (const [imageName, make] of Object.entries(IMAGES)) {
      it(`${configName}: ${imageName}`, async () => {
        const bytes = await make();
        const ours = await preprocessImageDetailed(bytes, cfg);
        const ref = await reference(bytes, json);
        expect(ref.dims).toEqual([1, 3, ours.height, ours.width]);
        expectSameFloats(ours.data, ref.data);
      });
    }
  }

  it('exact resize target with no crop', async () => {
    const json = { size: { height: 37, width: 53 }, resample: 3, do_normalize: true, image_mean: 0.5, image_std: 0.5 };
    const bytes = await IMAGES['300×200 noisy JPEG']!();
    const ours = await preprocessImageDetailed(bytes, parseImageProcessorConfig(json));
    expect([ours.width, ours.height]).toEqual([53, 37]);
    expectSameFloats(ours.data, (await reference(bytes, json)).data);
  });

  it('resize output sizes equal get_resize_output_image_size', () => {
    const processor = new CLIPImageProcessor(TINY_JSON);
    const random = rng(7);
    const sizes: unknown[] = [{ shortest_edge: 64 }, { shortest_edge: 1024 }, { longest_edge: 500 }, { shortest_edge: 224, longest_edge: 300 }];
    for (let n = 0; n < 500; n++) {
      const w = 1 + Math.floor(random() * 5000);
      const h = 1 + Math.floor(random() * 5000);
      const size = sizes[n % sizes.length] as { shortest_edge?: number; longest_edge?: number };
      const expected = processor.get_resize_output_image_size({ size: [w, h] } as unknown as RawImage, size);
      const ours = resizeOutputSize(w, h, { kind: 'edges', shortestEdge: size.shortest_edge, longestEdge: size.longest_edge });
      expect(ours).toEqual(expected);
    }
  });
});

describe('deliberate differences from transformers.js', () => {
  const cfg = parseImageProcessorConfig(TINY_JSON);
  const transparent = () =>
    pixels(50, 90, 4, (x, y, c) => (c === 3 ? (x < 25 ? 0 : Math.min(255, y * 3)) : c === 1 ? 200 : 40)).png().toBuffer();

  // transformers.js drops alpha (RawImage.rgb), exposing the colour stored under
  // transparent pixels; Python transformers and we composite onto white.
  it('alpha is composited onto white: equals transformers.js on the image pre-flattened onto white', async () => {
    const bytes = await transparent();
    const flattened = await sharp(bytes).flatten({ background: '#ffffff' }).png().toBuffer();
    expectSameFloats(await preprocessImage(bytes, cfg), (await reference(flattened, TINY_JSON)).data);
  });

  it('alpha is composited onto white: transformers.js on the RGBA bytes differs', async () => {
    const bytes = await transparent();
    const ours = await preprocessImage(bytes, cfg);
    const theirs = (await reference(bytes, TINY_JSON)).data;
    // Top-left pixel is fully transparent green-ish: white for us, (40, 200, 40) for transformers.js.
    expect([ours[0], ours[64 * 64], ours[2 * 64 * 64]]).toEqual([1, 1, 1]);
    expect(theirs[0]).toBeCloseTo(40 / 255, 6);
  });

  // transformers.js's Node center_crop chains sharp extend().extract() for this
  // case, but sharp runs extract first, so it throws "bad extract area". We pad
  // with black and crop, as its browser branch does.
  it('crop larger than the image in one direction only: padded, where transformers.js throws', async () => {
    const json = { ...CLIP_LIKE_JSON, crop_size: { height: 80, width: 20 } };
    const bytes = await IMAGES['64×48 RGB gradient PNG']!();
    await expect(reference(bytes, json)).rejects.toThrow(/extract/);
    const ours = await preprocessImageDetailed(bytes, parseImageProcessorConfig(json));
    // Resized to 53×40: 20 rows of black (normalised) above and below, columns 16…35 in between.
    const full = await preprocessImageDetailed(bytes, parseImageProcessorConfig({ ...json, do_center_crop: false }));
    expect([ours.width, ours.height, full.width, full.height]).toEqual([20, 80, 53, 40]);
    const black = -0.48145466 / 0.26862954;
    expect(ours.data[0]).toBeCloseTo(black, 5);
    expect(ours.data[79 * 20 + 19]).toBeCloseTo(black, 5);
    expect(ours.data[20 * 20]).toBe(full.data[16]);
    expect(ours.data[59 * 20 + 19]).toBe(full.data[39 * 53 + 35]);
  });

  // Not a difference: transformers.js in Node also auto-orients (sharp rotate()).
  it('EXIF orientation is applied: output equals the physically rotated image', async () => {
    const bytes = await orientedJpeg();
    // The JPEG's stored pixels, rotated 90° clockwise by hand, then stored losslessly.
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    const rotated = new Uint8Array(data.length);
    for (let y = 0; y < info.height; y++) {
      for (let x = 0; x < info.width; x++) {
        for (let c = 0; c < 3; c++) rotated[(x * info.height + (info.height - 1 - y)) * 3 + c] = data[(y * info.width + x) * 3 + c] ?? 0;
      }
    }
    const upright = await sharp(rotated, { raw: { width: info.height, height: info.width, channels: 3 } }).png().toBuffer();
    const ours = await preprocessImageDetailed(bytes, cfg);
    expect([ours.originalWidth, ours.originalHeight]).toEqual([20, 40]);
    expectSameFloats(ours.data, await preprocessImage(upright, cfg));
  });
});

describe('rejects undecodable and oversized images with invalid_image', () => {
  const cfg = parseImageProcessorConfig(TINY_JSON);
  const expectInvalid = async (bytes: Uint8Array, options?: PreprocessOptions, message?: RegExp) => {
    const error = await preprocessImage(bytes, cfg, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('invalid_image');
    if (message) expect((error as AppError).message).toMatch(message);
  };

  it('empty bytes', () => expectInvalid(new Uint8Array(0)));
  it('random bytes', () => {
    const random = rng(1);
    return expectInvalid(Uint8Array.from({ length: 4096 }, () => Math.floor(random() * 256)));
  });
  it('a text file', () => expectInvalid(new TextEncoder().encode('What is in the image?\nNothing, this is text.\n')));
  it('a truncated PNG', async () => {
    const png = await IMAGES['300×200 noisy JPEG']!().then((j) => sharp(j).png().toBuffer());
    await expectInvalid(png.subarray(0, Math.floor(png.length / 2)));
  });
  it('a truncated JPEG', async () => {
    const jpeg = await IMAGES['300×200 noisy JPEG']!();
    await expectInvalid(jpeg.subarray(0, Math.floor(jpeg.length * 0.6)));
  });
  it('a format outside the allow-list (TIFF)', async () => {
    await expectInvalid(await pixels(8, 8, 3, () => 9).tiff().toBuffer(), undefined, /unsupported image format tiff/);
  });
  it('more pixels than limitInputPixels (decompression bomb)', async () => {
    // 6000×6000 of one colour compresses to a few kB but would decode to 108 MB.
    const bomb = await sharp({ create: { width: 6000, height: 6000, channels: 3, background: '#808080' } }).png().toBuffer();
    expect(bomb.length).toBeLessThan(200_000);
    await expectInvalid(bomb, undefined, /pixel limit/i);
  });
  it('a side longer than maxInputSide', async () => {
    await expectInvalid(await pixels(300, 4, 3, () => 1).png().toBuffer(), { maxInputSide: 256 }, /neither side/);
  });
  it('an aspect ratio whose resize would exceed maxResizedPixels', async () => {
    await expectInvalid(await pixels(2000, 2, 3, () => 1).png().toBuffer(), { maxResizedPixels: 1_000_000 }, /aspect ratio/);
  });
});
