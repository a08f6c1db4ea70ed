import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LineTooLong, readLines, type Line } from './line-reader';

async function all(chunks: string[], opts = { maxLineBytes: 100 }): Promise<{ index: number; offset: number; text: string }[]> {
  const out: { index: number; offset: number; text: string }[] = [];
  for await (const l of readLines(Readable.from(chunks.map((c) => Buffer.from(c))), opts)) out.push({ index: l.index, offset: l.offset, text: l.bytes.toString() });
  return out;
}

describe('readLines', () => {
  it('splits lines across chunk boundaries with the byte offset of each line', async () => {
    expect(await all(['ab', 'c\nde\r\n', '\nf', 'g'])).toEqual([
      { index: 0, offset: 0, text: 'abc' },
      { index: 1, offset: 4, text: 'de' },
      { index: 2, offset: 8, text: '' },
      { index: 3, offset: 9, text: 'fg' },
    ]);
  });

  it('yields nothing for an empty stream and no empty line after a final newline', async () => {
    expect(await all([])).toEqual([]);
    expect(await all(['x\n'])).toEqual([{ index: 0, offset: 0, text: 'x' }]);
  });

  it('continues numbering from a ranged read', async () => {
    const lines: Line[] = [];
    for await (const l of readLines(Readable.from([Buffer.from('p\nq\n')]), { maxLineBytes: 10, startIndex: 64, startOffset: 1000 })) lines.push(l);
    expect(lines.map((l) => [l.index, l.offset, l.bytes.toString()])).toEqual([
      [64, 1000, 'p'],
      [65, 1002, 'q'],
    ]);
  });

  it('throws LineTooLong naming the line instead of buffering it, split or not', async () => {
    await expect(all(['ok\n', 'x'.repeat(11)], { maxLineBytes: 10 })).rejects.toMatchObject({ index: 1, limit: 10 });
    await expect(all(['ok\n', 'x'.repeat(6), 'x'.repeat(6), '\n'], { maxLineBytes: 10 })).rejects.toBeInstanceOf(LineTooLong);
    await expect(all(['x'.repeat(12) + '\n'], { maxLineBytes: 10 })).rejects.toMatchObject({ index: 0 });
  });
});
