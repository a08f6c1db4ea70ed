import { crc32, deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';

/** What the gateway must do with an input: accept it, reject it (4xx), or either (but never 5xx). */
export type Expectation = 'accept' | 'reject' | 'either';

export interface CorpusItem {
  name: string;
  bytes: Buffer;
  expect: Expectation;
}

/** Deterministic PRNG (mulberry32), so the corpus is the same on every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pngChunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

const PNG_SIG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** An RGB PNG of `w × h` whose rows are all zero: tiny on disk, `w·h·3` bytes once inflated. */
function zeroPng(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  const idat = deflateSync(Buffer.alloc(h * (1 + 3 * w)), { level: 9 });
  return Buffer.concat([PNG_SIG, pngChunk('IHDR', ihdr), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A hand-made GIF: a `screenW × screenH` logical screen holding `frames` 1×1 frames. */
function tinyGif(frames: number, screenW = 1, screenH = 1): Buffer {
  const head = Buffer.from([...Buffer.from('GIF89a'), screenW & 0xff, screenW >> 8, screenH & 0xff, screenH >> 8, 0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
  const frame = Buffer.from([0x21, 0xf9, 0x04, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x2c, 0, 0, 0, 0, 1, 0, 1, 0, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00]);
  return Buffer.concat([head, ...Array.from({ length: frames }, () => frame), Buffer.from([0x3b])]);
}

/** Sets the frame size in a JPEG's first SOF segment. */
function jpegClaiming(jpeg: Buffer, w: number, h: number): Buffer {
  const out = Buffer.from(jpeg);
  for (let i = 2; i < out.length - 9; i++) {
    if (out[i] === 0xff && (out[i + 1] === 0xc0 || out[i + 1] === 0xc2)) {
      out.writeUInt16BE(h, i + 5);
      out.writeUInt16BE(w, i + 7);
      return out;
    }
  }
  throw new Error('no SOF segment');
}

/** A WebP whose VP8X header claims a `w × h` canvas around a real lossless bitstream. */
function webpClaiming(lossless: Buffer, w: number, h: number): Buffer {
  const vp8l = lossless.subarray(12);
  const vp8x = Buffer.alloc(18);
  vp8x.write('VP8X', 0, 'latin1');
  vp8x.writeUInt32LE(10, 4);
  vp8x.writeUIntLE(w - 1, 12, 3);
  vp8x.writeUIntLE(h - 1, 15, 3);
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), vp8x, vp8l]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'latin1');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

async function noise(w: number, h: number, channels: 3 | 4, seed: number): Promise<Sharp> {
  const r = rng(seed);
  const raw = Buffer.alloc(w * h * channels);
  for (let i = 0; i < raw.length; i++) raw[i] = Math.floor(r() * 256);
  // Smooth it so that encoders produce realistic files rather than incompressible noise.
  return sharp(await sharp(raw, { raw: { width: w, height: h, channels } }).blur(1.5).toBuffer(), { raw: { width: w, height: h, channels } });
}

/** Valid images, including unusual encodings the gateway must still accept. */
async function validImages(): Promise<CorpusItem[]> {
  const rgb = () => noise(64, 48, 3, 1);
  const frames = await Promise.all(['#c33', '#3c3', '#33c', '#cc3'].map((c) => sharp({ create: { width: 32, height: 24, channels: 3, background: c } }).png().toBuffer()));
  const items: [string, Promise<Buffer>][] = [
    ['png-rgb', rgb().then((s) => s.png().toBuffer())],
    ['png-rgba', noise(40, 40, 4, 2).then((s) => s.png().toBuffer())],
    ['png-grey', rgb().then((s) => s.greyscale().png().toBuffer())],
    ['png-palette', rgb().then((s) => s.png({ palette: true, colours: 16 }).toBuffer())],
    ['png-16bit', rgb().then((s) => s.toColourspace('rgb16').png().toBuffer())],
    ['png-interlaced', rgb().then((s) => s.png({ progressive: true }).toBuffer())],
    ['png-1x1', sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer()],
    ['jpeg-rgb', rgb().then((s) => s.jpeg({ quality: 80 }).toBuffer())],
    ['jpeg-cmyk', rgb().then((s) => s.toColourspace('cmyk').jpeg().toBuffer())],
    ['jpeg-progressive', rgb().then((s) => s.jpeg({ progressive: true }).toBuffer())],
    ['jpeg-exif-rotated', rgb().then((s) => s.jpeg().withMetadata({ orientation: 6 }).toBuffer())],
    ['jpeg-grey', rgb().then((s) => s.greyscale().jpeg().toBuffer())],
    ['webp-lossy', rgb().then((s) => s.webp({ quality: 70 }).toBuffer())],
    ['webp-lossless-alpha', noise(40, 40, 4, 3).then((s) => s.webp({ lossless: true }).toBuffer())],
    ['webp-animated', sharp(frames, { join: { animated: true } }).webp({ delay: [80, 80, 80, 80] }).toBuffer()],
    ['gif-static', rgb().then((s) => s.gif().toBuffer())],
    ['gif-animated', sharp(frames, { join: { animated: true } }).gif({ delay: [80, 80, 80, 80], loop: 0 }).toBuffer()],
    ['gif-hand-made-50-frames', Promise.resolve(tinyGif(50))],
    ['png-thin-strip', sharp({ create: { width: 8000, height: 2, channels: 3, background: '#456' } }).png().toBuffer()],
    ['png-zero-bomb-within-limits-4000x4000', Promise.resolve(zeroPng(4000, 4000))],
  ];
  return Promise.all(items.map(async ([name, p]) => ({ name, bytes: await p, expect: 'accept' as const })));
}

/** At least `min` inputs: valid ones, and every kind of hostile one the issue lists. */
export async function hostileCorpus(min = 1000): Promise<CorpusItem[]> {
  const valid = await validImages();
  const r = rng(42);
  const out: CorpusItem[] = [...valid];
  const small = valid.filter((v) => v.bytes.length < 200_000);
  for (const v of small) {
    for (const f of [0.02, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.995]) {
      out.push({ name: `${v.name}-truncated-${f}`, bytes: v.bytes.subarray(0, Math.max(1, Math.floor(v.bytes.length * f))), expect: 'reject' });
    }
    out.push({ name: `${v.name}-truncated-last-byte`, bytes: v.bytes.subarray(0, v.bytes.length - 1), expect: 'reject' });
  }
  const lossless = valid.find((v) => v.name === 'webp-lossless-alpha')?.bytes ?? Buffer.alloc(0);
  const jpeg = valid.find((v) => v.name === 'jpeg-rgb')?.bytes ?? Buffer.alloc(0);
  const png = valid.find((v) => v.name === 'png-rgb')?.bytes ?? Buffer.alloc(0);
  const specials: [string, Buffer, Expectation][] = [
    ['png-header-bomb-50000x50000', headerBomb(50_000, 50_000), 'reject'],
    ['png-header-bomb-100000x1', headerBomb(100_000, 1), 'reject'],
    ['png-decompression-bomb-10000x10000', zeroPng(10_000, 10_000), 'reject'],
    ['png-decompression-bomb-6000x6000', zeroPng(6_000, 6_000), 'reject'],
    ['jpeg-header-bomb-65500x65500', jpegClaiming(jpeg, 65_500, 65_500), 'reject'],
    ['gif-header-bomb-65535x65535', tinyGif(1, 65_535, 65_535), 'reject'],
    ['gif-2000-frames', tinyGif(2_000), 'reject'],
    ['webp-canvas-bomb-16384x16384', webpClaiming(lossless, 16_384, 16_384), 'reject'],
    ['svg-plain', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'), 'reject'],
    ['svg-xxe', Buffer.from('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>'), 'reject'],
    ['svg-ssrf', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://169.254.169.254/latest/meta-data/"/></svg>'), 'reject'],
    ['svg-script', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>'), 'reject'],
    ['pdf', Buffer.from('%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n'), 'reject'],
    ['bmp', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60, 1)]), 'reject'],
    ['psd', Buffer.concat([Buffer.from('8BPS'), Buffer.alloc(60, 0)]), 'reject'],
    ['jp2', Buffer.from([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a, 0, 0, 0, 0]), 'reject'],
    ['fits', Buffer.from('SIMPLE  =                    T'.padEnd(2880, ' ')), 'reject'],
    ['ppm', Buffer.from('P6\n2 2\n255\n\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000\u0000'), 'reject'],
    ['polyglot-png-plus-zip', Buffer.concat([png, Buffer.from('PK\u0003\u0004\u0014\u0000zipzipzip')]), 'reject'],
    ['polyglot-png-plus-html', Buffer.concat([png, Buffer.from('<html><script>alert(1)</script></html>')]), 'reject'],
    ['polyglot-gif-javascript', Buffer.from('GIF89a/*\u0001\u0001\u0000\u0000\u0000*/=alert(1);//'), 'reject'],
    ['polyglot-png-magic-then-svg', Buffer.concat([PNG_SIG, Buffer.from('<svg xmlns="http://www.w3.org/2000/svg"/>')]), 'reject'],
    ['polyglot-jpeg-plus-zip', Buffer.concat([jpeg, Buffer.from('PK\u0003\u0004\u0014\u0000zipzipzip')]), 'either'],
    ['polyglot-jpeg-plus-pdf', Buffer.concat([jpeg, Buffer.from('%PDF-1.4\n%%EOF\n')]), 'either'],
    ['empty', Buffer.alloc(0), 'reject'],
    ['one-byte', Buffer.from([0x89]), 'reject'],
    ['png-magic-only', PNG_SIG, 'reject'],
    ['jpeg-magic-only', Buffer.from([0xff, 0xd8, 0xff]), 'reject'],
    ['gif-magic-only', Buffer.from('GIF89a'), 'reject'],
    ['webp-magic-only', Buffer.from('RIFF\u0000\u0000\u0000\u0000WEBP'), 'reject'],
  ];
  for (const [name, bytes, expect] of specials) out.push({ name, bytes, expect });
  out.push({ name: 'tiff', bytes: await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).tiff().toBuffer(), expect: 'reject' });
  out.push({ name: 'avif', bytes: await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).avif().toBuffer(), expect: 'reject' });
  const magics = [PNG_SIG, Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.from('GIF89a'), Buffer.from('RIFF\u0010\u0000\u0000\u0000WEBPVP8 ')];
  for (let i = 0; i < 120; i++) {
    const rand = Buffer.from(Array.from({ length: 1 + Math.floor(r() * 4096) }, () => Math.floor(r() * 256)));
    out.push({ name: `random-${i}`, bytes: rand, expect: 'reject' });
    out.push({ name: `random-with-magic-${i}`, bytes: Buffer.concat([magics[i % magics.length] as Buffer, rand]), expect: 'reject' });
  }
  // Bit flips: damage in pixel data can leave a decodable image, so these may go either way, never to a 5xx.
  let round = 0;
  while (out.length < min || round < 20) {
    for (const v of small) {
      const b = Buffer.from(v.bytes);
      const flips = 1 + Math.floor(r() * 3);
      for (let k = 0; k < flips; k++) {
        const at = Math.floor(r() * b.length);
        b[at] = (b[at] ?? 0) ^ (1 << Math.floor(r() * 8));
      }
      out.push({ name: `${v.name}-bitflip-${round}`, bytes: b, expect: 'either' });
    }
    round++;
  }
  return out;
}

function headerBomb(w: number, h: number): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([PNG_SIG, pngChunk('IHDR', ihdr), pngChunk('IDAT', deflateSync(Buffer.alloc(4096))), pngChunk('IEND', Buffer.alloc(0))]);
}
