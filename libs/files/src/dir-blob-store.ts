import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFound, assertBlobKey, assertByteRange, type BlobStore, type ByteRange, type PutOptions } from './blob-store';

const isAbsent = (err: unknown): boolean => {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

/** Blobs as files under one folder (a shared volume when several gateways run). */
export class DirBlobStore implements BlobStore {
  readonly root: string;
  readonly describe: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.describe = `dir:${this.root}`;
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<{ bytes: number }> {
    const path = this.pathOf(key);
    const dir = dirname(path);
    await mkdir(dir, { recursive: true });
    // Same folder as the target so that the rename is atomic; a crash leaves only a dot-file, never a partial blob.
    const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
    let bytes = 0;
    try {
      const fh = await open(tmp, 'wx');
      try {
        await pipeline(
          body,
          async (source: AsyncIterable<Buffer | string>) => {
            for await (const chunk of source) {
              const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
              bytes += buf.length;
              // writeFile on a handle writes at the current position and retries short writes.
              await fh.writeFile(buf);
            }
          },
          opts.signal ? { signal: opts.signal } : {},
        );
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await syncDir(dir);
    return { bytes };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range) assertByteRange(range);
    const path = this.pathOf(key);
    // Opening first puts "not found" on the promise and pins the file against a concurrent delete.
    const fh = await open(path, 'r').catch((err: unknown) => {
      throw isAbsent(err) ? new BlobNotFound(key) : err;
    });
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new BlobNotFound(key);
    }
    return fh.createReadStream(range ? { start: range.start, ...(range.end !== undefined ? { end: range.end } : {}) } : {});
  }

  async head(key: string): Promise<{ bytes: number } | null> {
    const st = await stat(this.pathOf(key)).catch((err: unknown) => {
      if (isAbsent(err)) return null;
      throw err;
    });
    return st?.isFile() ? { bytes: st.size } : null;
  }

  async delete(key: string): Promise<void> {
    await unlink(this.pathOf(key)).catch((err: unknown) => {
      if (!isAbsent(err)) throw err;
    });
  }

  async ping(): Promise<boolean> {
    try {
      // Creating the root lets a fresh development checkout become ready; a root that cannot be made or written is not.
      await mkdir(this.root, { recursive: true });
      await access(this.root, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }

  private pathOf(key: string): string {
    assertBlobKey(key);
    return join(this.root, key);
  }
}

/** Makes a rename durable: without it a power loss can forget the new directory entry. */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
