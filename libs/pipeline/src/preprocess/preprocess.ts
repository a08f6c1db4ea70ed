import sharp from 'sharp';
import { AppError } from '@fastvlm/contracts';
import type { ImageProcessorConfig, Resample, ResizeTarget } from './image-processor-config';

/**
 * Turns encoded image bytes into the `pixel_values` FastVLM's vision encoder
 * takes, bit-identical to transformers.js's CLIPImageProcessor in Node for
 * opaque images: the engine's greedy output must equal transformers.js's
 * `generate()`, and with random weights one ulp of input can flip a token.
 *
 * Where we deliberately differ from transformers.js:
 * - Transparent pixels are composited onto white, as Python transformers'
 *   `convert_to_rgb` does. transformers.js drops the alpha channel instead,
 *   which exposes whatever colour the encoder left under transparent pixels
 *   (often black). Fully opaque images are unaffected.
 * - A centre crop larger than the image in one direction only throws in
 *   transformers.js's Node code (sharp runs its extract before its extend); we
 *   pad with black as in its other padding cases. FastVLM crops to its resize
 *   size, so its config never gets there.
 * - Decoding is bounded (pixel, side and format limits) and any decode failure
 *   is an `invalid_image` AppError rather than a generic Error.
 * EXIF orientation is applied by both (transformers.js calls sharp's `rotate()`,
 * which auto-orients).
 */

export type FailOn = 'none' | 'truncated' | 'error' | 'warning';

export interface PreprocessOptions {
  /** Largest decoded width × height; sharp rejects larger inputs from the header, before decoding. */
  limitInputPixels?: number;
  /** Largest decoded width or height. */
  maxInputSide?: number;
  /**
   * Largest intermediate image after resizing and before the centre crop. A
   * shortest-edge resize blows a thin strip up to S × (S · aspect ratio), so a
   * tiny 10000×1 image would otherwise become gigapixels.
   */
  maxResizedPixels?: number;
  /** sharp's `failOn`: `warning` also rejects truncated and corrupt files. */
  failOn?: FailOn;
  /** sharp format ids accepted, as reported by `metadata().format`. */
  formats?: readonly string[];
  /**
   * Apple's `image_aspect_ratio: pad`: the image is first centred on a square
   * of its longer side filled with the normalisation mean colour, so nothing is
   * cropped away. Off by default (the export's processor centre-crops).
   */
  padToSquare?: boolean;
  /**
   * Images whose shorter side exceeds this many pixels are shrunk towards it
   * while decoding (libvips shrink-on-load: a 24 MP JPEG is never decoded at
   * full size). 0 disables. Set by the pipeline to twice the processor's target,
   * so the model-defined resize still does the final, exact step.
   */
  shrinkOnLoadTo?: number;
}

export const DEFAULT_PREPROCESS_OPTIONS: Readonly<Required<PreprocessOptions>> = {
  limitInputPixels: 25_000_000,
  maxInputSide: 16_384,
  maxResizedPixels: 4096 * 4096,
  padToSquare: false,
  shrinkOnLoadTo: 0,
  failOn: 'warning',
  formats: ['jpeg', 'png', 'webp', 'gif'],
};

export interface PreprocessedImage {
  /** CHW float32, `[3, height, width]`. */
  data: Float32Array;
  width: number;
  height: number;
  /** Size after EXIF orientation, before resizing. */
  originalWidth: number;
  originalHeight: number;
}

/** Interleaved 8-bit RGB. */
interface Rgb8 {
  data: Uint8Array;
  width: number;
  height: number;
}

function invalid(message: string, cause?: unknown): AppError {
  return new AppError('invalid_image', message, undefined, cause === undefined ? undefined : { cause });
}

function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function decode(bytes: Uint8Array, opts: Required<PreprocessOptions>): Promise<Rgb8> {
  if (bytes.byteLength === 0) throw invalid('image is empty');
  const input = { failOn: opts.failOn, limitInputPixels: opts.limitInputPixels };

  let format: string | undefined;
  let width: number | undefined;
  let height: number | undefined;
  try {
    ({ format, width, height } = await sharp(bytes, input).metadata());
  } catch (e) {
    throw invalid(`image could not be decoded: ${reason(e)}`, e);
  }
  if (format === undefined || !opts.formats.includes(format)) {
    throw invalid(`unsupported image format ${format ?? 'unknown'}; expected one of ${opts.formats.join(', ')}`);
  }
  if (width === undefined || height === undefined) throw invalid('image has no dimensions');
  if (Math.max(width, height) > opts.maxInputSide) {
    throw invalid(`image is ${width}×${height}; neither side may exceed ${opts.maxInputSide}`);
  }

  try {
    // `raw()` hands back 8-bit sRGB whatever the source (16-bit, CMYK, palette,
    // grey, embedded ICC profile) from the same libvips calls transformers.js makes;
    // flatten only touches pixels whose alpha is below 255.
    let pipeline = sharp(bytes, input).autoOrient();
    const target = opts.shrinkOnLoadTo;
    if (target > 0 && Math.min(width, height) > target) {
      // `outside` keeps the aspect ratio with the shorter side at `target`, whatever the EXIF rotation.
      pipeline = pipeline.resize({ width: target, height: target, fit: 'outside', kernel: 'lanczos3', fastShrinkOnLoad: true });
    }
    const { data, info } = await pipeline
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, info.channels), width: info.width, height: info.height };
  } catch (e) {
    if (e instanceof AppError) throw e;
    throw invalid(`image could not be decoded: ${reason(e)}`, e);
  }
}

function toRgb(data: Uint8Array, channels: number): Uint8Array {
  if (channels === 3) return data;
  if (channels !== 1 && channels !== 4) throw invalid(`decoded image has ${channels} channels`);
  const pixels = data.length / channels;
  const out = new Uint8Array(pixels * 3);
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < 3; c++) out[p * 3 + c] = data[p * channels + (channels === 1 ? 0 : c)] ?? 0;
  }
  return out;
}

/** transformers.js `ImageProcessor.get_resize_output_image_size`, returning [width, height]. */
export function resizeOutputSize(width: number, height: number, target: ResizeTarget): [number, number] {
  if (target.kind === 'exact') return [target.width, target.height];
  const { shortestEdge, longestEdge } = target;
  const shortFactor = shortestEdge === undefined ? 1 : Math.max(shortestEdge / width, shortestEdge / height);
  const w = width * shortFactor;
  const h = height * shortFactor;
  const longFactor = longestEdge === undefined ? 1 : Math.min(longestEdge / w, longestEdge / h);
  // The 2-decimal rounding before flooring is transformers.js's guard against
  // float noise (e.g. 223.99999 → 224); reproduced so sizes agree exactly.
  return [Math.floor(Number((w * longFactor).toFixed(2))), Math.floor(Number((h * longFactor).toFixed(2)))];
}

async function resize(img: Rgb8, width: number, height: number, resample: Resample): Promise<Rgb8> {
  if (img.width === width && img.height === height) return img;
  let pipeline = sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } });
  // transformers.js resizes with an affine transform (Pillow-like point
  // sampling, no antialiasing) for these three, and with sharp's lanczos3
  // resize for lanczos; any other call would give different pixels.
  pipeline =
    resample === 'lanczos'
      ? pipeline.resize({ width, height, fit: 'fill', kernel: 'lanczos3' })
      : pipeline.affine([width / img.width, 0, 0, height / img.height], { interpolator: resample });
  try {
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    return { data: toRgb(data, info.channels), width: info.width, height: info.height };
  } catch (e) {
    throw invalid(`image could not be resized to ${width}×${height}: ${reason(e)}`, e);
  }
}

/**
 * Per-channel lookup from an 8-bit value to its final float. transformers.js
 * rescales then normalises, rounding to float32 after each step (its buffer is
 * a Float32Array), so the table applies both roundings in the same order.
 */
function valueTables(cfg: ImageProcessorConfig): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const table = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      let x = v;
      if (cfg.rescaleFactor !== null) x = Math.fround(cfg.rescaleFactor * x);
      if (cfg.normalize !== null) {
        x = Math.fround((x - (cfg.normalize.mean[c] ?? 0)) / (cfg.normalize.std[c] ?? 1));
      }
      table[v] = x;
    }
    return table;
  });
}

/**
 * transformers.js's Node `center_crop`: when the crop is larger than the image
 * it pads with black (value 0, rescaled and normalised like any pixel), and
 * offsets are floored, so an odd surplus puts the extra row/column at the end.
 * Output is CHW floats.
 */
function cropToChw(img: Rgb8, cropW: number, cropH: number, tables: Float32Array[]): Float32Array {
  const offset = (surplus: number): number => (surplus >= 0 ? Math.floor(surplus / 2) : -Math.floor(-surplus / 2));
  const left = offset(img.width - cropW);
  const top = offset(img.height - cropH);
  const plane = cropW * cropH;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const table = tables[c] ?? new Float32Array(256);
    const black = table[0] ?? 0;
    for (let y = 0; y < cropH; y++) {
      const sy = y + top;
      const rowOut = c * plane + y * cropW;
      for (let x = 0; x < cropW; x++) {
        const sx = x + left;
        const inside = sy >= 0 && sy < img.height && sx >= 0 && sx < img.width;
        out[rowOut + x] = inside ? (table[img.data[(sy * img.width + sx) * 3 + c] ?? 0] ?? 0) : black;
      }
    }
  }
  return out;
}

export async function preprocessImageDetailed(
  bytes: Uint8Array,
  cfg: ImageProcessorConfig,
  options: PreprocessOptions = {},
): Promise<PreprocessedImage> {
  const opts = { ...DEFAULT_PREPROCESS_OPTIONS, ...options };
  let img = await decode(bytes, opts);
  const originalWidth = img.width;
  const originalHeight = img.height;
  if (opts.padToSquare) img = padToSquare(img, meanColour(cfg));

  if (cfg.resize !== null) {
    const [w, h] = resizeOutputSize(img.width, img.height, cfg.resize);
    if (w < 1 || h < 1 || w * h > opts.maxResizedPixels) {
      throw invalid(`image of ${img.width}×${img.height} has an unsupported aspect ratio (would resize to ${w}×${h})`);
    }
    img = await resize(img, w, h, cfg.resample);
  }

  const crop = cfg.centerCrop ?? { width: img.width, height: img.height };
  const data = cropToChw(img, crop.width, crop.height, valueTables(cfg));
  return { data, width: crop.width, height: crop.height, originalWidth, originalHeight };
}

/** CHW float32 pixel values `[3, cropH, cropW]`; throws AppError `invalid_image`. */
export async function preprocessImage(
  bytes: Uint8Array,
  cfg: ImageProcessorConfig,
  options?: PreprocessOptions,
): Promise<Float32Array> {
  return (await preprocessImageDetailed(bytes, cfg, options)).data;
}

/** The normalisation mean as an 8-bit colour (black when the processor does not normalise). */
function meanColour(cfg: ImageProcessorConfig): [number, number, number] {
  const m = cfg.normalize?.mean ?? [0, 0, 0];
  return [Math.round(m[0] * 255), Math.round(m[1] * 255), Math.round(m[2] * 255)];
}

/** Centres the image on a square of its longer side (LLaVA's `expand2square`). */
function padToSquare(img: Rgb8, colour: [number, number, number]): Rgb8 {
  const side = Math.max(img.width, img.height);
  if (img.width === img.height) return img;
  const out = new Uint8Array(side * side * 3);
  for (let p = 0; p < side * side; p++) out.set(colour, p * 3);
  const left = Math.floor((side - img.width) / 2);
  const top = Math.floor((side - img.height) / 2);
  for (let y = 0; y < img.height; y++) {
    out.set(img.data.subarray(y * img.width * 3, (y + 1) * img.width * 3), ((top + y) * side + left) * 3);
  }
  return { data: out, width: side, height: side };
}
