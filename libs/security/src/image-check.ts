import sharp, { type Metadata } from 'sharp';
import { AppError } from '@fastvlm/contracts';
import { checkContainer } from './container-check';
import { sniffImageFormat, type ImageFormat } from './image-sniff';

export { sniffImageFormat, type ImageFormat } from './image-sniff';

export interface ImageLimits {
  /** Largest encoded image accepted, in bytes. Default 20 MiB. */
  maxBytes: number;
  /** Largest pixel count (width × height of the first frame) accepted. Default 25 MP. */
  maxPixels: number;
  /** Largest width or height accepted. Default 16384. */
  maxDimension: number;
  /** Most frames an animated GIF or WebP may have (only the first is used). Default 1000. */
  maxFrames?: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = {
  maxBytes: 20 * 1024 * 1024,
  maxPixels: 25_000_000,
  maxDimension: 16_384,
  maxFrames: 1_000,
};

export interface CheckedImage {
  format: ImageFormat;
  width: number;
  height: number;
  /** Frames in the file; the model sees only the first. */
  frames: number;
}

/** Why an image was refused; goes to the audit log (never the bytes). */
export type ImageRejection = 'empty' | 'too_large' | 'unsupported_format' | 'truncated' | 'corrupt' | 'trailing_data' | 'mismatch' | 'too_many_pixels' | 'too_many_frames';

export class ImageRejected extends AppError {
  constructor(
    readonly reason: ImageRejection,
    message: string,
    param: string,
  ) {
    super(reason === 'too_large' ? 'payload_too_large' : 'invalid_image', message, param);
  }
}

/**
 * Checks an image on its bytes and header only, never decoding pixels:
 * 1. size, then the format from the magic bytes (JPEG, PNG, WebP, GIF; never
 *    from a declared type);
 * 2. the container structure (truncation, PNG CRCs, data after the end);
 * 3. sharp's header read: the format libvips sees must be the sniffed one,
 *    and width, height, pixel count and frame count must be within limits.
 * Animated GIF and WebP are accepted and reduced to their first frame: the
 * worker decodes with sharp's default `pages: 1`, exactly that frame.
 */
export async function checkImage(bytes: Uint8Array, limits: ImageLimits = DEFAULT_IMAGE_LIMITS, param = 'image'): Promise<CheckedImage> {
  if (bytes.length === 0) throw new ImageRejected('empty', 'The image is empty.', param);
  if (bytes.length > limits.maxBytes) {
    throw new ImageRejected('too_large', `The image is ${bytes.length} bytes; the limit is ${limits.maxBytes}.`, param);
  }
  const format = sniffImageFormat(bytes);
  if (!format) throw new ImageRejected('unsupported_format', 'The image is not a JPEG, PNG, WebP or GIF file.', param);
  const container = checkContainer(format, bytes);
  if (!container.ok) {
    const what = { truncated: 'is truncated', corrupt: 'is corrupt', trailing_data: 'has data after its end' }[container.reason];
    throw new ImageRejected(container.reason, `The ${format.toUpperCase()} image ${what}.`, param);
  }
  let meta: Metadata;
  try {
    // Header only: sharp reads metadata without decoding pixels.
    meta = await sharp(bytes, { limitInputPixels: false, failOn: 'warning' }).metadata();
  } catch {
    throw new ImageRejected('corrupt', `The ${format.toUpperCase()} image could not be read.`, param);
  }
  if (meta.format !== format) throw new ImageRejected('mismatch', 'The image content does not match its signature.', param);
  // libvips clips a GIF to its frames, but its logical screen is a size the file declares: capped alike.
  const width = Math.max(meta.width ?? 0, container.declared?.width ?? 0);
  const height = Math.max(meta.height ?? 0, container.declared?.height ?? 0);
  if ((meta.width ?? 0) < 1 || (meta.height ?? 0) < 1) throw new ImageRejected('corrupt', 'The image has no pixels.', param);
  if (width > limits.maxDimension || height > limits.maxDimension || width * height > limits.maxPixels) {
    throw new ImageRejected(
      'too_many_pixels',
      `The image is ${width}×${height}; the limits are ${limits.maxDimension} pixels a side and ${limits.maxPixels} pixels in all.`,
      param,
    );
  }
  const frames = Math.max(meta.pages ?? 1, container.frames);
  const maxFrames = limits.maxFrames ?? DEFAULT_IMAGE_LIMITS.maxFrames ?? 1_000;
  if (frames > maxFrames) throw new ImageRejected('too_many_frames', `The image has ${frames} frames; the limit is ${maxFrames}.`, param);
  return { format, width, height, frames };
}
