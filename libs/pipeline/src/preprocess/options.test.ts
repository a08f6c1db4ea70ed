import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { parseImageProcessorConfig } from './image-processor-config';
import { preprocessImageDetailed } from './preprocess';

// The tiny model's processor: shortest edge 64, centre crop 64, rescale 1/255, mean 0, std 1.
const cfg = parseImageProcessorConfig({
  image_processor_type: 'CLIPImageProcessor',
  do_resize: true,
  size: { shortest_edge: 64 },
  resample: 3,
  do_center_crop: true,
  crop_size: { height: 64, width: 64 },
  do_rescale: true,
  rescale_factor: 1 / 255,
  do_normalize: true,
  image_mean: [0, 0, 0],
  image_std: [1, 1, 1],
  do_convert_rgb: true,
});

const at = (data: Float32Array, c: number, y: number, x: number): number => data[c * 64 * 64 + y * 64 + x] as number;

describe('preprocessing options', () => {
  it('pad-to-square keeps the whole wide image: mean-coloured bands above and below, the image in the middle', async () => {
    const red = await sharp({ create: { width: 80, height: 40, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
    const padded = await preprocessImageDetailed(red, cfg, { padToSquare: true });
    // The mean is 0, so the bands are black; the middle rows are red across the full width.
    expect(at(padded.data, 0, 2, 32)).toBeCloseTo(0, 2);
    expect(at(padded.data, 0, 61, 32)).toBeCloseTo(0, 2);
    expect(at(padded.data, 0, 32, 1)).toBeCloseTo(1, 2);
    expect(at(padded.data, 0, 32, 62)).toBeCloseTo(1, 2);
    expect(at(padded.data, 1, 32, 32)).toBeCloseTo(0, 2);
    // Without it, the centre crop fills every row with red.
    const cropped = await preprocessImageDetailed(red, cfg);
    expect(at(cropped.data, 0, 2, 32)).toBeCloseTo(1, 2);
  });

  it('shrinks a large photo while decoding, giving nearly the pixels of a full decode', async () => {
    const w = 3000;
    const h = 2000;
    const raw = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set([(x * 255) / w, (y * 255) / h, 128], (y * w + x) * 3);
    const photo = await sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
    const full = await preprocessImageDetailed(photo, cfg);
    const shrunk = await preprocessImageDetailed(photo, cfg, { shrinkOnLoadTo: 256 });
    expect(shrunk.originalHeight).toBe(256);
    expect(full.originalHeight).toBe(2000);
    let diff = 0;
    for (let i = 0; i < full.data.length; i++) diff += Math.abs((full.data[i] as number) - (shrunk.data[i] as number));
    expect(diff / full.data.length).toBeLessThan(0.02);
  });
});
