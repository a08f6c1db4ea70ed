import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BlobNotFound, assertBlobKey, assertByteRange, type BlobStore, type ByteRange, type PutOptions } from './blob-store';

export interface S3BlobStoreOptions {
  /** URL of an S3-compatible server (MinIO, Ceph, R2, s3rver); AWS's own when absent. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** Folder inside the bucket, without slashes at either end; '' for the bucket's root. */
  prefix?: string;
  /** `endpoint/bucket/key` URLs instead of `bucket.endpoint/key` (most S3-compatible servers need it). */
  forcePathStyle: boolean;
  /** Static keys; absent: the SDK's default chain (environment, IRSA, instance role…). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Milliseconds ping waits for the bucket to answer. Default 5 000. */
  pingTimeoutMs?: number;
}

/** Parts are buffered in memory: 8 MiB × queueSize 2 in flight bounds a 200 MB upload to ~24 MiB. */
const PART_SIZE = 8 * 1024 * 1024;
const QUEUE_SIZE = 2;

const isNotFound = (err: unknown): boolean => {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
};

/** Blobs as objects of one S3 bucket, under an optional prefix. */
export class S3BlobStore implements BlobStore {
  readonly describe: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly pingTimeoutMs: number;

  constructor(opts: S3BlobStoreOptions) {
    const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.bucket = opts.bucket;
    this.prefix = prefix ? `${prefix}/` : '';
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 5_000;
    this.describe = `s3://${opts.bucket}${prefix ? `/${prefix}` : ''}`;
    this.client = new S3Client({
      region: opts.region,
      forcePathStyle: opts.forcePathStyle,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
    });
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<{ bytes: number }> {
    const Key = this.objectKey(key);
    let bytes = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _enc, done) {
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: counted, ...(opts.contentType ? { ContentType: opts.contentType } : {}) },
      partSize: PART_SIZE,
      queueSize: QUEUE_SIZE,
    });
    let failure: { err: unknown } | undefined;
    const fail = (err: unknown): void => {
      if (failure) return;
      failure = { err };
      // Never completing the multipart upload is what keeps a partial object from appearing; abort also
      // asks S3 to drop the parts already sent (a lifecycle rule on incomplete uploads is the safety net).
      void upload.abort();
      counted.destroy();
    };
    const feeding = pipeline(body, counted, opts.signal ? { signal: opts.signal } : {}).catch(fail);
    await upload.done().catch(fail);
    await feeding;
    if (failure) throw failure.err;
    return { bytes };
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    if (range) assertByteRange(range);
    const Key = this.objectKey(key);
    const out = await this.client
      .send(new GetObjectCommand({ Bucket: this.bucket, Key, ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}) }))
      .catch((err: unknown) => {
        throw isNotFound(err) ? new BlobNotFound(key) : err;
      });
    if (!(out.Body instanceof Readable)) throw new Error(`GetObject of ${Key} returned no Node stream`);
    return out.Body;
  }

  async head(key: string): Promise<{ bytes: number } | null> {
    const Key = this.objectKey(key);
    try {
      const out = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key }));
      return { bytes: out.ContentLength ?? 0 };
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
  }

  async ping(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: AbortSignal.timeout(this.pingTimeoutMs) });
      return true;
    } catch {
      return false;
    }
  }

  /** Releases the client's sockets. */
  close(): void {
    this.client.destroy();
  }

  private objectKey(key: string): string {
    assertBlobKey(key);
    return this.prefix + key;
  }
}
