import { crc32 } from 'node:zlib';
import type { ImageFormat } from './image-sniff';

/**
 * Walks the container structure of an image without decoding pixels:
 * every chunk, segment or block must lie inside the file, PNG chunk CRCs must
 * match, and the file must reach its end marker. This catches truncated and
 * bit-flipped files in microseconds on the gateway; damage inside compressed
 * pixel data is caught by the worker's decode (`failOn: 'warning'`).
 *
 * Returns a reason for refusal, or the number of frames (GIF) / 1.
 */
export type ContainerVerdict =
  | { ok: true; frames: number; /** Size the container itself declares, when it has one apart from the frames (GIF's logical screen). */ declared?: { width: number; height: number } }
  | { ok: false; reason: 'truncated' | 'corrupt' | 'trailing_data' };

const bad = (reason: 'truncated' | 'corrupt' | 'trailing_data'): ContainerVerdict => ({ ok: false, reason });

export function checkContainer(format: ImageFormat, b: Uint8Array): ContainerVerdict {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  switch (format) {
    case 'png':
      return png(buf);
    case 'jpeg':
      return jpeg(buf);
    case 'gif':
      return gif(buf);
    case 'webp':
      return webp(buf);
  }
}

function png(b: Buffer): ContainerVerdict {
  let pos = 8;
  let first = true;
  let sawData = false;
  for (;;) {
    if (pos + 12 > b.length) return bad('truncated');
    const len = b.readUInt32BE(pos);
    if (len > 0x7fffffff) return bad('corrupt');
    const type = b.toString('latin1', pos + 4, pos + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) return bad('corrupt');
    if (first && (type !== 'IHDR' || len !== 13)) return bad('corrupt');
    first = false;
    const end = pos + 12 + len;
    if (end > b.length) return bad('truncated');
    if (crc32(b.subarray(pos + 4, pos + 8 + len)) !== b.readUInt32BE(pos + 8 + len)) return bad('corrupt');
    if (type === 'IDAT') sawData = true;
    if (type === 'IEND') {
      if (!sawData) return bad('corrupt');
      // Bytes after IEND are how PNG polyglots carry a second file.
      return end === b.length ? { ok: true, frames: 1 } : bad('trailing_data');
    }
    pos = end;
  }
}

function jpeg(b: Buffer): ContainerVerdict {
  let pos = 2;
  let sawFrame = false;
  for (;;) {
    if (pos >= b.length) return bad('truncated');
    if (b[pos] !== 0xff) return bad('corrupt');
    while (pos < b.length && b[pos] === 0xff) pos++;
    if (pos >= b.length) return bad('truncated');
    const marker = b[pos] as number;
    pos++;
    if (marker === 0xd9 || marker === 0x00) return bad('corrupt');
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (pos + 2 > b.length) return bad('truncated');
    const len = b.readUInt16BE(pos);
    if (len < 2) return bad('corrupt');
    if (pos + len > b.length) return bad('truncated');
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) sawFrame = true;
    if (marker === 0xda) {
      if (!sawFrame) return bad('corrupt');
      // Entropy-coded data never holds FF D9 (0xFF bytes are stuffed), so the first one ends the image.
      // Data after it is allowed: cameras append multi-picture (MPF) images and motion photos there.
      return b.indexOf(EOI, pos + len) >= 0 ? { ok: true, frames: 1 } : bad('truncated');
    }
    pos += len;
  }
}
const EOI = Buffer.from([0xff, 0xd9]);

function gif(b: Buffer): ContainerVerdict {
  if (b.length < 13) return bad('truncated');
  let pos = 13;
  const flags = b[10] as number;
  if (flags & 0x80) pos += 3 * 2 ** ((flags & 7) + 1);
  let frames = 0;
  const subBlocks = (): boolean => {
    for (;;) {
      if (pos >= b.length) return false;
      const size = b[pos] as number;
      pos += 1 + size;
      if (size === 0) return pos <= b.length;
    }
  };
  for (;;) {
    if (pos >= b.length) return bad('truncated');
    const intro = b[pos] as number;
    if (intro === 0x3b) return frames > 0 ? { ok: true, frames, declared: { width: b.readUInt16LE(6), height: b.readUInt16LE(8) } } : bad('corrupt');
    if (intro === 0x21) {
      pos += 2;
      if (!subBlocks()) return bad('truncated');
    } else if (intro === 0x2c) {
      if (pos + 10 > b.length) return bad('truncated');
      const f = b[pos + 9] as number;
      pos += 10;
      if (f & 0x80) pos += 3 * 2 ** ((f & 7) + 1);
      pos += 1; // LZW minimum code size
      if (!subBlocks()) return bad('truncated');
      frames++;
    } else {
      return bad('corrupt');
    }
  }
}

function webp(b: Buffer): ContainerVerdict {
  if (b.length < 20) return bad('truncated');
  const riffEnd = 8 + b.readUInt32LE(4);
  if (riffEnd > b.length) return bad('truncated');
  if (riffEnd < b.length - 1 || (riffEnd === b.length - 1 && b[riffEnd] !== 0)) return bad('trailing_data');
  let pos = 12;
  let first = true;
  while (pos < riffEnd) {
    if (pos + 8 > riffEnd) return bad('truncated');
    const fourcc = b.toString('latin1', pos, pos + 4);
    if (first && fourcc !== 'VP8 ' && fourcc !== 'VP8L' && fourcc !== 'VP8X') return bad('corrupt');
    first = false;
    const size = b.readUInt32LE(pos + 4);
    pos += 8 + size + (size & 1);
    if (pos > riffEnd) return bad('truncated');
  }
  return first ? bad('corrupt') : { ok: true, frames: 1 };
}
