import { z } from 'zod';
import { envBoolean } from '@fastvlm/contracts';
import type { BlobStore } from './blob-store';
import { DirBlobStore } from './dir-blob-store';
import { S3BlobStore } from './s3-blob-store';

/** Where uploaded files (Files API) and batch outputs are stored; merge into an app's schema and refine with `checkFilesStorage`. */
export const FilesEnvShape = {
  /** `dir` (a folder, a shared volume in Kubernetes) or `s3` (a bucket of S3 or an S3-compatible server). Default dir. */
  FILES_STORAGE: z.enum(['dir', 's3']).default('dir'),
  /** Folder of the `dir` storage, relative to the working directory unless absolute. Default `.data/files`. */
  FILES_DIR: z.string().min(1).default('.data/files'),
  /** Bucket of the `s3` storage (required with FILES_STORAGE=s3). */
  FILES_S3_BUCKET: z.string().min(1).optional(),
  /** Folder inside the bucket, e.g. `fastvlm/files`; '' for the bucket's root. Default ''. */
  FILES_S3_PREFIX: z.string().regex(/^[A-Za-z0-9._/-]*$/, 'letters, digits, `._-` and `/` only').default(''),
  /** Region of the bucket. Default us-east-1. */
  FILES_S3_REGION: z.string().min(1).default('us-east-1'),
  /** URL of an S3-compatible server (MinIO, Ceph, R2, s3rver); absent: AWS S3. */
  FILES_S3_ENDPOINT: z.string().url().regex(/^https?:\/\//, 'an http:// or https:// URL').optional(),
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. Default false. */
  FILES_S3_FORCE_PATH_STYLE: envBoolean.default(false),
  /** Static access key (with FILES_S3_SECRET_ACCESS_KEY); absent: the SDK's default chain (IRSA, instance role…). */
  FILES_S3_ACCESS_KEY_ID: z.string().min(1).optional(),
  /** Static secret key (with FILES_S3_ACCESS_KEY_ID). */
  FILES_S3_SECRET_ACCESS_KEY: z.string().min(1).optional(),
};

export type FilesEnv = z.infer<z.ZodObject<typeof FilesEnvShape>>;

/** The cross-field rules of FilesEnvShape, for the `superRefine` of the schema that merges it. */
export function checkFilesStorage(env: FilesEnv, ctx: z.RefinementCtx): void {
  if (env.FILES_STORAGE === 's3' && !env.FILES_S3_BUCKET) {
    ctx.addIssue({ code: 'custom', path: ['FILES_S3_BUCKET'], message: 'required with FILES_STORAGE=s3' });
  }
  if ((env.FILES_S3_ACCESS_KEY_ID === undefined) !== (env.FILES_S3_SECRET_ACCESS_KEY === undefined)) {
    const missing = env.FILES_S3_ACCESS_KEY_ID === undefined ? 'FILES_S3_ACCESS_KEY_ID' : 'FILES_S3_SECRET_ACCESS_KEY';
    ctx.addIssue({ code: 'custom', path: [missing], message: 'give both FILES_S3_ACCESS_KEY_ID and FILES_S3_SECRET_ACCESS_KEY, or neither' });
  }
}

/** The store the validated config names. */
export function createBlobStore(env: FilesEnv): BlobStore {
  switch (env.FILES_STORAGE) {
    case 'dir':
      return new DirBlobStore(env.FILES_DIR);
    case 's3': {
      const { FILES_S3_ACCESS_KEY_ID: accessKeyId, FILES_S3_SECRET_ACCESS_KEY: secretAccessKey } = env;
      if (!env.FILES_S3_BUCKET) throw new Error('FILES_S3_BUCKET is required with FILES_STORAGE=s3');
      return new S3BlobStore({
        region: env.FILES_S3_REGION,
        bucket: env.FILES_S3_BUCKET,
        prefix: env.FILES_S3_PREFIX,
        forcePathStyle: env.FILES_S3_FORCE_PATH_STYLE,
        ...(env.FILES_S3_ENDPOINT ? { endpoint: env.FILES_S3_ENDPOINT } : {}),
        ...(accessKeyId && secretAccessKey ? { credentials: { accessKeyId, secretAccessKey } } : {}),
      });
    }
  }
}
