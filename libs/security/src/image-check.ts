import sharp, { type Metadata } from 'sharp';
import { AppError } from '@fastvlm/contracts';

export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif';

export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. Default 20 MiB. */
  maxBytes: number;
  /** Largest pixel count (width × height) accepted. Default 25 MP. */
  maxPixels: number;
  /** Largest width or height accepted. Default 16384. */
  maxDimension: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 25_000_000,
  maxDimension: 16_384,
};

export interface CheckedImage {
  format: ImageFormat;
  width: number;
  height: number;
}

/** The format named by the first bytes; the declared type of a data URL or part is never trusted. */
export function sniffImageFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'png';
  if (b.length >= 12 && ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP') return 'webp';
  if (b.length >= 6 && (ascii(b, 0, 6) === 'GIF87a' || ascii(b, 0, 6) === 'GIF89a')) return 'gif';
  return null;
}

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

/**
 * Checks an image on its bytes and header only: allowed format by magic bytes,
 * size, and dimensions read from the header before anything is decoded.
 */
export async function checkImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS): Promise<CheckedImage> {
  if (bytes.length === 0) throw new AppError('invalid_image', 'The image is empty.', 'image');
  if (bytes.length > limits.maxBytes) {
    throw new AppError('payload_too_large', `The image is ${bytes.length} bytes; the limit is ${limits.maxBytes}.`, 'image');
  }
  const format = sniffImageFormat(bytes);
  if (!format) {
    throw new AppError('invalid_image', 'The image is not a JPEG, PNG, WebP or GIF file.', 'image');
  }
  let meta: Metadata;
  try {
    // Header only: sharp reads metadata without decoding pixels.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new AppError('invalid_image', `The ${format.toUpperCase()} image could not be read.`, 'image');
  }
  if (meta.format !== format) {
    throw new AppError('invalid_image', 'The image content does not match its signature.', 'image');
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  if (width < 1 || height < 1) throw new AppError('invalid_image', 'The image has no pixels.', 'image');
  if (width > limits.maxDimension || height > limits.maxDimension || width * height > limits.maxPixels) {
    throw new AppError(
      'invalid_image',
      `The image is ${width}×${height}; the limits are ${limits.maxDimension} pixels a side and ${limits.maxPixels} pixels in all.`,
      'image',
    );
  }
  return { format, width, height };
}
