import type { Readable } from 'node:stream';
import { readLines, type Line } from '@fastvlm/batches';
import type { BlobStore } from '@fastvlm/files';

/** Every this many lines the validator notes a byte offset, so a runner reads a request without reading the file from its start. */
export const OFFSET_EVERY = 64;

/**
 * Reads chosen lines of a batch's input file from storage: for each run of
 * nearby indices, one ranged read from the nearest noted offset. Indices must
 * be sorted ascending.
 */
export async function* linesAt(blobs: BlobStore, key: string, offsets: number[], indices: number[], maxLineBytes: number): AsyncGenerator<Line> {
  let i = 0;
  while (i < indices.length) {
    const first = indices[i] as number;
    const chunk = Math.min(Math.floor(first / OFFSET_EVERY), offsets.length - 1);
    const stream: Readable = await blobs.get(key, { start: offsets[chunk] ?? 0 });
    try {
      for await (const line of readLines(stream, { maxLineBytes, startIndex: chunk * OFFSET_EVERY, startOffset: offsets[chunk] ?? 0 })) {
        const want = indices[i];
        if (want === undefined) break;
        if (line.index < want) {
          // Far from the next wanted line: a fresh ranged read is cheaper than reading through.
          if (want - line.index > 2 * OFFSET_EVERY) break;
          continue;
        }
        yield line;
        i += 1;
      }
    } finally {
      stream.destroy();
    }
    if (i < indices.length && (indices[i] as number) === first) throw new Error(`line ${first} is past the end of the input file`);
  }
}
