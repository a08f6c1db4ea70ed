import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BlobNotFound, type BlobStore } from './blob-store';
import { DirBlobStore } from './dir-blob-store';
import { S3BlobStore } from './s3-blob-store';
import { startS3Server, type TestS3Server } from './test-s3-server';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

/** Byte `p` of every test body: position-dependent, so a lost, repeated or reordered part changes the hash. */
function pattern(from: number, len: number): Buffer {
  const b = Buffer.allocUnsafe(len);
  for (let i = 0; i < len; i++) {
    const p = from + i;
    b[i] = (p * 7 + (p >>> 13)) & 0xff;
  }
  return b;
}

/** A body produced chunk by chunk (never whole in memory); `fail` throws or aborts once that many bytes are out. */
function body(total: number, fail?: { after: number; abort?: AbortController }): Readable {
  return Readable.from(
    (function* () {
      for (let at = 0; at < total; at += CHUNK) {
        if (fail && at >= fail.after) {
          if (!fail.abort) throw new Error('client went away');
          // Not synchronously: aborting destroys this very stream, which cannot end a generator mid-step.
          const abort = fail.abort;
          queueMicrotask(() => abort.abort());
        }
        yield pattern(at, Math.min(CHUNK, total - at));
      }
    })(),
  );
}

async function sha256(stream: AsyncIterable<Buffer>): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of stream) h.update(chunk);
  return h.digest('hex');
}

async function text(stream: Readable): Promise<string> {
  return Buffer.concat(await stream.toArray()).toString();
}

interface Subject {
  store: BlobStore;
  /** Temporary files the store left behind (dir only: S3 keeps nothing visible before completion). */
  leftovers(): Promise<string[]>;
  /** A store of the same kind whose storage does not answer. */
  broken: BlobStore;
  describe: RegExp;
  close(): Promise<void>;
}

async function dirSubject(): Promise<Subject> {
  const root = await mkdtemp(join(tmpdir(), 'fastvlm-files-'));
  const aFile = join(root, 'not-a-folder');
  await writeFile(aFile, 'x');
  return {
    store: new DirBlobStore(join(root, 'blobs')),
    leftovers: async () => (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.tmp')),
    // A root below a regular file can be neither created nor written, even by root.
    broken: new DirBlobStore(join(aFile, 'blobs')),
    describe: /^dir:\/.*\/blobs$/,
    close: () => rm(root, { recursive: true, force: true }),
  };
}

async function s3Subject(): Promise<Subject> {
  const server: TestS3Server = await startS3Server();
  const opts = { endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: server.credentials };
  const store = new S3BlobStore({ ...opts, bucket: server.bucket, prefix: 'tenant/files/' });
  const broken = new S3BlobStore({ ...opts, bucket: 'no-such-bucket' });
  return {
    store,
    leftovers: () => Promise.resolve([]),
    broken,
    describe: /^s3:\/\/fastvlm-test\/tenant\/files$/,
    close: async () => {
      store.close();
      broken.close();
      await server.stop();
    },
  };
}

describe.each([
  ['DirBlobStore', dirSubject],
  ['S3BlobStore', s3Subject],
])('%s', (_name, make) => {
  let s: Subject;
  beforeAll(async () => {
    s = await make();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('streams a 20 MiB body in and out unchanged and reports its size', async () => {
    const total = 20 * MiB;
    const { bytes } = await s.store.put('batch/out/file-20m.jsonl', body(total), { contentType: 'application/jsonl' });
    expect(bytes).toBe(total);
    expect(await s.store.head('batch/out/file-20m.jsonl')).toEqual({ bytes: total });
    expect(await sha256(await s.store.get('batch/out/file-20m.jsonl'))).toBe(await sha256(body(total)));
  });

  it('rejects a put whose body errors midway and leaves nothing under the key', async () => {
    // Past one 8 MiB part, so the S3 store has a multipart upload under way when the body fails.
    await expect(s.store.put('broken.jsonl', body(16 * MiB, { after: 10 * MiB }))).rejects.toThrow('client went away');
    expect(await s.store.head('broken.jsonl')).toBeNull();
    expect(await s.leftovers()).toEqual([]);
  });

  it('rejects an aborted put and leaves nothing under the key', async () => {
    const abort = new AbortController();
    const put = s.store.put('aborted.jsonl', body(16 * MiB, { after: 1 * MiB, abort }), { signal: abort.signal });
    await expect(put).rejects.toThrow(/abort/i);
    expect(await s.store.head('aborted.jsonl')).toBeNull();
    expect(await s.leftovers()).toEqual([]);
  });

  it('keeps the previous blob when a put over it fails', async () => {
    await s.store.put('kept.txt', Readable.from([Buffer.from('first')]));
    await expect(s.store.put('kept.txt', body(2 * MiB, { after: 1 * MiB }))).rejects.toThrow();
    expect(await text(await s.store.get('kept.txt'))).toBe('first');
  });

  it('overwrites an existing key', async () => {
    await s.store.put('over.txt', Readable.from([Buffer.from('a longer first version')]));
    expect(await s.store.put('over.txt', Readable.from([Buffer.from('v2')]))).toEqual({ bytes: 2 });
    expect(await s.store.head('over.txt')).toEqual({ bytes: 2 });
    expect(await text(await s.store.get('over.txt'))).toBe('v2');
  });

  it('rejects get of a missing key with BlobNotFound naming the key', async () => {
    const err: unknown = await s.store.get('nope/missing.jsonl').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlobNotFound);
    expect((err as BlobNotFound).key).toBe('nope/missing.jsonl');
    expect(await s.store.head('nope/missing.jsonl')).toBeNull();
  });

  it('serves inclusive byte ranges, open-ended or not', async () => {
    await s.store.put('ranged.bin', body(3 * CHUNK));
    const slice = await s.store.get('ranged.bin', { start: CHUNK - 5, end: CHUNK + 4 });
    expect(Buffer.concat(await slice.toArray())).toEqual(pattern(CHUNK - 5, 10));
    const tail = await s.store.get('ranged.bin', { start: 3 * CHUNK - 3 });
    expect(Buffer.concat(await tail.toArray())).toEqual(pattern(3 * CHUNK - 3, 3));
  });

  it('deletes a key, and deleting it again is not an error', async () => {
    await s.store.put('gone.txt', Readable.from([Buffer.from('x')]));
    await s.store.delete('gone.txt');
    await s.store.delete('gone.txt');
    expect(await s.store.head('gone.txt')).toBeNull();
  });

  it.each(['', '/abs', 'trailing/', 'a//b', '../escape', 'a/./b', 'a/../b', 'sp ace', 'ünï', 'back\\slash'])(
    'rejects the bad key %j in every operation',
    async (key) => {
      await expect(s.store.put(key, Readable.from([Buffer.from('x')]))).rejects.toThrow('invalid blob key');
      await expect(s.store.get(key)).rejects.toThrow('invalid blob key');
      await expect(s.store.head(key)).rejects.toThrow('invalid blob key');
      await expect(s.store.delete(key)).rejects.toThrow('invalid blob key');
    },
  );

  it('answers ping when its storage works, and not when it does not', async () => {
    expect(await s.store.ping()).toBe(true);
    expect(await s.broken.ping()).toBe(false);
  });

  it('describes where it stores', () => {
    expect(s.store.describe).toMatch(s.describe);
  });
});
