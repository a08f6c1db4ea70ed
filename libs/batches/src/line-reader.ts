import type { Readable } from 'node:stream';

export interface Line {
  /** 0-based index of the line in the file (counting from the line the stream starts at). */
  index: number;
  /** Byte offset of the line's first byte, from the start of the stream plus `startOffset`. */
  offset: number;
  /** The line without its `\n` (and without a `\r` before it). */
  bytes: Buffer;
}

/** A line longer than the limit; the reader stops there rather than buffering it. */
export class LineTooLong extends Error {
  constructor(
    readonly index: number,
    readonly limit: number,
  ) {
    super(`Line ${index + 1} is longer than ${limit} bytes.`);
  }
}

export interface ReadLinesOptions {
  /** Longest line held in memory; a longer one throws `LineTooLong`. */
  maxLineBytes: number;
  /** Index and byte offset of the stream's first line (a ranged read from an offset index). */
  startIndex?: number;
  startOffset?: number;
}

const NL = 0x0a;
const CR = 0x0d;

/**
 * Splits a byte stream into lines without holding more than one line: JSONL
 * files of up to 200 MB are validated and fed from storage this way. A last
 * line without `\n` counts; an empty file has no lines.
 */
export async function* readLines(stream: Readable, opts: ReadLinesOptions): AsyncGenerator<Line> {
  let index = opts.startIndex ?? 0;
  let offset = opts.startOffset ?? 0;
  let parts: Buffer[] = [];
  let held = 0;
  const line = (tail: Buffer): Line => {
    let bytes = parts.length === 0 ? tail : Buffer.concat([...parts, tail]);
    if (bytes.length > 0 && bytes[bytes.length - 1] === CR) bytes = bytes.subarray(0, bytes.length - 1);
    const out = { index, offset, bytes };
    offset += held + tail.length + 1;
    index += 1;
    parts = [];
    held = 0;
    return out;
  };
  for await (const chunk of stream) {
    let buf = chunk as Buffer;
    for (;;) {
      const nl = buf.indexOf(NL);
      if (nl < 0) break;
      if (held + nl > opts.maxLineBytes) throw new LineTooLong(index, opts.maxLineBytes);
      yield line(buf.subarray(0, nl));
      buf = buf.subarray(nl + 1);
    }
    if (buf.length > 0) {
      held += buf.length;
      if (held > opts.maxLineBytes) throw new LineTooLong(index, opts.maxLineBytes);
      parts.push(buf);
    }
  }
  if (held > 0) {
    const tail = Buffer.concat(parts);
    yield { index, offset, bytes: tail[tail.length - 1] === CR ? tail.subarray(0, tail.length - 1) : tail };
  }
}
