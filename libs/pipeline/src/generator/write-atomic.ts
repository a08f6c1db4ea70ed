/**
 * Publishes a model folder all at once: files are written into a sibling temp
 * folder (same filesystem, so rename is atomic) and then renamed into place. A
 * concurrent reader sees the old model, no model, or the new one — never a mix.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/** File content made piece by piece while it is written, so it is never whole in memory. */
export interface ChunkedData {
  byteLength: number;
  chunks(): Iterable<Uint8Array>;
}

export interface OutputFile {
  /** Path relative to the model folder, `/`-separated. */
  path: string;
  data: Uint8Array | string | ChunkedData;
}

export interface WriteOptions {
  /** Called before each file is written (progress for long generations). */
  onFile?: (path: string, bytes: number) => void;
}

function sizeOf(data: OutputFile['data']): number {
  if (typeof data === 'string') return Buffer.byteLength(data);
  return data.byteLength;
}

export async function writeFolderAtomically(outDir: string, files: readonly OutputFile[], opts: WriteOptions = {}): Promise<void> {
  const target = resolve(outDir);
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  const tag = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const temp = join(parent, `.${basename(target)}.tmp-${tag}`);
  try {
    for (const f of files) {
      const dest = join(temp, ...f.path.split('/'));
      await mkdir(dirname(dest), { recursive: true });
      opts.onFile?.(f.path, sizeOf(f.data));
      const { data } = f;
      // writeFile awaits each chunk of an iterable before pulling the next one.
      await writeFile(dest, typeof data === 'string' || data instanceof Uint8Array ? data : data.chunks());
    }
    await replaceDir(temp, target, join(parent, `.${basename(target)}.old-${tag}`));
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

/** rename() cannot replace a non-empty folder, so an existing one is moved aside first. */
async function replaceDir(from: string, to: string, aside: string): Promise<void> {
  try {
    await rename(from, to);
    return;
  } catch (err) {
    if (!isFsError(err, 'ENOTEMPTY') && !isFsError(err, 'EEXIST')) throw err;
  }
  await rename(to, aside);
  try {
    await rename(from, to);
  } catch (err) {
    await rename(aside, to).catch(() => undefined);
    throw err;
  }
  await rm(aside, { recursive: true, force: true });
}

function isFsError(err: unknown, code: string): boolean {
  return err instanceof Error && 'code' in err && err.code === code;
}
