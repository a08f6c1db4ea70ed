import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { ImageRejected, checkImage } from './image-check';
import { restrictImageLoaders } from './image-loaders';

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** A PNG whose IHDR claims `w × h` with a small, well-formed IDAT. */
function pngClaiming(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const sig = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return Buffer.concat([sig, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

async function reason(bytes: Uint8Array): Promise<string> {
  try {
    await checkImage(bytes);
    return 'accepted';
  } catch (e) {
    return e instanceof ImageRejected ? e.reason : `other: ${String(e)}`;
  }
}

const solid = (w: number, h: number) => sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 30, b: 90 } } });

describe('checkImage', () => {
  beforeAll(() => restrictImageLoaders());

  it('accepts JPEG, PNG, WebP and GIF, including CMYK, 16-bit, palette and EXIF-rotated files', async () => {
    expect(await reason(await solid(40, 30).jpeg().toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).toColourspace('cmyk').jpeg().toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).png({ palette: true }).toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).toColourspace('rgb16').png().toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).jpeg().withMetadata({ orientation: 6 }).toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).webp().toBuffer())).toBe('accepted');
    expect(await reason(await solid(40, 30).gif().toBuffer())).toBe('accepted');
  });

  it('accepts an animated GIF as its first frame and reports the frame count', async () => {
    const frames = await Promise.all(['#f00', '#0f0', '#00f'].map((c) => sharp({ create: { width: 20, height: 10, channels: 3, background: c } }).png().toBuffer()));
    const gif = await sharp(frames, { join: { animated: true } }).gif({ delay: [50, 50, 50] }).toBuffer();
    expect(await checkImage(gif)).toEqual({ format: 'gif', width: 20, height: 10, frames: 3 });
  });

  it('rejects a PNG whose header claims 50,000 × 50,000 pixels, from the header alone', async () => {
    expect(await reason(pngClaiming(50_000, 50_000))).toBe('too_many_pixels');
    expect(await reason(pngClaiming(20_000, 1))).toBe('too_many_pixels');
  });

  it('rejects truncated, bit-flipped and padded files without decoding them', async () => {
    const png = await solid(64, 64).png().toBuffer();
    expect(await reason(png.subarray(0, png.length - 5))).toBe('truncated');
    const flipped = Buffer.from(png);
    flipped[40] = (flipped[40] ?? 0) ^ 0x10;
    expect(await reason(flipped)).toBe('corrupt');
    expect(await reason(Buffer.concat([png, Buffer.from('PK\u0003\u0004zip')]))).toBe('trailing_data');
    const jpeg = await solid(64, 64).jpeg().toBuffer();
    expect(await reason(jpeg.subarray(0, jpeg.length - 2))).toBe('truncated');
    const webp = await solid(64, 64).webp().toBuffer();
    expect(await reason(webp.subarray(0, webp.length - 3))).toBe('truncated');
    const gif = await solid(64, 64).gif().toBuffer();
    expect(await reason(gif.subarray(0, gif.length - 1))).toBe('truncated');
  });

  it('rejects SVG, PDF, TIFF, AVIF and empty input by their bytes, whatever they claim to be', async () => {
    expect(await reason(Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>'))).toBe('unsupported_format');
    expect(await reason(Buffer.from('%PDF-1.7\n%âãÏÓ\n'))).toBe('unsupported_format');
    expect(await reason(await solid(8, 8).tiff().toBuffer())).toBe('unsupported_format');
    expect(await reason(await solid(8, 8).avif().toBuffer())).toBe('unsupported_format');
    expect(await reason(Buffer.alloc(0))).toBe('empty');
  });

  it('rejects a file whose content is another format than its signature says', async () => {
    const png = await solid(8, 8).png().toBuffer();
    const jpegSig = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x02]), Buffer.from([0xff, 0xda, 0x00, 0x02, 0xff, 0xd9]), png]);
    expect(await reason(jpegSig)).not.toBe('accepted');
  });

  it('rejects images over the byte limit as payload_too_large', async () => {
    const png = await solid(64, 64).png().toBuffer();
    await expect(checkImage(png, { maxBytes: 10, maxPixels: 1e9, maxDimension: 1e5 })).rejects.toMatchObject({ code: 'payload_too_large' });
  });
});
