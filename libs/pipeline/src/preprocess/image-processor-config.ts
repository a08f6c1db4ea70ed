import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AppError } from '@fastvlm/contracts';

/**
 * `preprocessor_config.json` of a CLIPImageProcessor, normalised into the
 * exact decisions transformers.js's `ImageProcessor` makes from it. Defaults
 * are transformers.js's, not Python transformers' (e.g. `do_normalize` is off
 * unless the file says so), because our pixels must match transformers.js.
 */
export interface ImageProcessorConfig {
  /** null: the image keeps its decoded size. */
  resize: ResizeTarget | null;
  resample: Resample;
  /** null: no centre crop, the output has the resized image's size. */
  centerCrop: { width: number; height: number } | null;
  /** null: pixel values stay in 0…255. */
  rescaleFactor: number | null;
  /** null: no normalisation. */
  normalize: { mean: RgbTriple; std: RgbTriple } | null;
}

export type RgbTriple = readonly [number, number, number];

export type ResizeTarget =
  /** Scale so the shorter side becomes `shortestEdge`, then shrink so neither side exceeds `longestEdge`. */
  | { kind: 'edges'; shortestEdge: number | undefined; longestEdge: number | undefined }
  | { kind: 'exact'; width: number; height: number };

export type Resample = 'nearest' | 'bilinear' | 'bicubic' | 'lanczos';

export const PREPROCESSOR_CONFIG_FILE = 'preprocessor_config.json';

const positiveInt = z.number().int().positive();
const perChannel = z.union([z.number(), z.array(z.number()).length(3)]);
const off = z.union([z.literal(false), z.null()]).optional();

/**
 * PIL codes as transformers.js maps them. It substitutes bilinear for box (4)
 * and hamming (5) with a warning, so we do the same to stay pixel-identical.
 */
const RESAMPLE_BY_CODE: Record<number, Resample> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'bilinear',
  5: 'bilinear',
};

const RawSchema = z
  .object({
    do_resize: z.boolean().optional(),
    size: z
      .union([
        positiveInt,
        z.object({
          shortest_edge: positiveInt.optional(),
          longest_edge: positiveInt.optional(),
          height: positiveInt.optional(),
          width: positiveInt.optional(),
        }),
      ])
      .optional(),
    image_size: z.unknown().optional(),
    max_size: positiveInt.optional(),
    resample: z
      .union([z.number().int().min(0).max(5), z.enum(['nearest', 'bilinear', 'bicubic', 'lanczos'])])
      .optional(),
    do_center_crop: z.boolean().optional(),
    crop_size: z.union([positiveInt, z.object({ height: positiveInt, width: positiveInt })]).optional(),
    do_rescale: z.boolean().optional(),
    rescale_factor: z.number().positive().optional(),
    do_normalize: z.boolean().optional(),
    image_mean: perChannel.optional(),
    image_std: perChannel.optional(),
    mean: perChannel.optional(),
    std: perChannel.optional(),
    do_convert_rgb: z.boolean().optional(),
    // Options transformers.js honours but this pipeline does not implement.
    // Accepting them silently would give pixels that differ from transformers.js.
    do_thumbnail: off,
    do_pad: off,
    do_crop_margin: off,
    do_flip_channel_order: off,
    size_divisibility: z.null().optional(),
    size_divisor: z.null().optional(),
    ensure_multiple_of: z.null().optional(),
  })
  .refine((c) => c.image_size === undefined || c.size !== undefined, {
    message: '`image_size` is not supported; use `size`',
  });

type RawConfig = z.infer<typeof RawSchema>;

function triple(value: number | number[] | undefined, field: string): RgbTriple {
  if (value === undefined) throw new Error(`\`do_normalize\` is true but \`${field}\` is missing`);
  if (typeof value === 'number') return [value, value, value];
  const [a = 0, b = 0, c = 0] = value;
  return [a, b, c];
}

function normalise(raw: RawConfig): ImageProcessorConfig {
  let resize: ResizeTarget | null = null;
  if (raw.do_resize ?? raw.size !== undefined) {
    const size = raw.size;
    if (size === undefined) throw new Error('`do_resize` is true but `size` is missing');
    if (typeof size === 'number') {
      // transformers.js reads an integer size as "fit inside size×size" (longest_edge
      // defaults to the same number), unlike Python where it is the shortest edge.
      resize = { kind: 'edges', shortestEdge: size, longestEdge: raw.max_size ?? size };
    } else if (size.shortest_edge !== undefined || size.longest_edge !== undefined) {
      resize = { kind: 'edges', shortestEdge: size.shortest_edge, longestEdge: size.longest_edge };
    } else if (size.height !== undefined && size.width !== undefined) {
      resize = { kind: 'exact', width: size.width, height: size.height };
    } else {
      throw new Error('`size` needs `shortest_edge`, `longest_edge` or `height`+`width`');
    }
  }

  let centerCrop: ImageProcessorConfig['centerCrop'] = null;
  if (raw.do_center_crop) {
    const crop = raw.crop_size;
    if (crop === undefined) throw new Error('`do_center_crop` is true but `crop_size` is missing');
    centerCrop = typeof crop === 'number' ? { width: crop, height: crop } : { width: crop.width, height: crop.height };
  }

  const resampleRaw = raw.resample ?? 2;
  const resample = typeof resampleRaw === 'number' ? RESAMPLE_BY_CODE[resampleRaw] : resampleRaw;
  if (resample === undefined) throw new Error(`unsupported \`resample\` ${String(resampleRaw)}`);

  return {
    resize,
    resample,
    centerCrop,
    rescaleFactor: (raw.do_rescale ?? true) ? (raw.rescale_factor ?? 1 / 255) : null,
    normalize: raw.do_normalize
      ? {
          mean: triple(raw.image_mean ?? raw.mean, 'image_mean'),
          std: triple(raw.image_std ?? raw.std, 'image_std'),
        }
      : null,
  };
}

/** Validates already-parsed JSON; `source` names the file in error messages. */
export function parseImageProcessorConfig(json: unknown, source = PREPROCESSOR_CONFIG_FILE): ImageProcessorConfig {
  const parsed = RawSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new AppError('model_load_failed', `${source} is not a supported CLIPImageProcessor config: ${issues}`);
  }
  try {
    return normalise(parsed.data);
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    throw new AppError('model_load_failed', `${source} is not a supported CLIPImageProcessor config: ${reason}`);
  }
}

/** Reads `<modelDir>/preprocessor_config.json`. */
export async function loadImageProcessorConfig(modelDir: string): Promise<ImageProcessorConfig> {
  const file = join(modelDir, PREPROCESSOR_CONFIG_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new AppError('model_load_failed', `cannot read ${file}`, undefined, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new AppError('model_load_failed', `${file} is not valid JSON`, undefined, { cause: e });
  }
  return parseImageProcessorConfig(json, file);
}
