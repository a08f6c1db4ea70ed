import { z } from 'zod';
import { parseEnv } from '@fastvlm/contracts';
import { describe, expect, it } from 'vitest';
import { DirBlobStore } from './dir-blob-store';
import { FilesEnvShape, checkFilesStorage, createBlobStore } from './files-config';
import { S3BlobStore } from './s3-blob-store';

const Schema = z.object(FilesEnvShape).superRefine(checkFilesStorage);

describe('files storage config', () => {
  it('defaults to a folder .data/files under the working directory', () => {
    const env = parseEnv(Schema, {});
    expect(env).toMatchObject({ FILES_STORAGE: 'dir', FILES_DIR: '.data/files', FILES_S3_PREFIX: '', FILES_S3_REGION: 'us-east-1', FILES_S3_FORCE_PATH_STYLE: false });
    const store = createBlobStore(env);
    expect(store).toBeInstanceOf(DirBlobStore);
    expect(store.describe).toBe(`dir:${process.cwd()}/.data/files`);
  });

  it('refuses s3 storage without a bucket, naming the variable', () => {
    expect(() => parseEnv(Schema, { FILES_STORAGE: 's3' })).toThrow(/FILES_S3_BUCKET: required with FILES_STORAGE=s3/);
  });

  it('refuses an access key without its secret, and a secret without its key', () => {
    expect(() => parseEnv(Schema, { FILES_S3_ACCESS_KEY_ID: 'AK' })).toThrow(/FILES_S3_SECRET_ACCESS_KEY: give both/);
    expect(() => parseEnv(Schema, { FILES_S3_SECRET_ACCESS_KEY: 'SK' })).toThrow(/FILES_S3_ACCESS_KEY_ID: give both/);
  });

  it('refuses an endpoint that is not a URL', () => {
    expect(() => parseEnv(Schema, { FILES_STORAGE: 's3', FILES_S3_BUCKET: 'b', FILES_S3_ENDPOINT: 'minio:9000' })).toThrow(/FILES_S3_ENDPOINT/);
  });

  it('builds an S3 store for an S3-compatible server from the variables', () => {
    const env = parseEnv(Schema, {
      FILES_STORAGE: 's3',
      FILES_S3_BUCKET: 'uploads',
      FILES_S3_PREFIX: 'fastvlm/files',
      FILES_S3_ENDPOINT: 'http://minio:9000',
      FILES_S3_FORCE_PATH_STYLE: 'true',
      FILES_S3_ACCESS_KEY_ID: 'AK',
      FILES_S3_SECRET_ACCESS_KEY: 'SK',
    });
    const store = createBlobStore(env);
    expect(store).toBeInstanceOf(S3BlobStore);
    expect(store.describe).toBe('s3://uploads/fastvlm/files');
    (store as S3BlobStore).close();
  });
});
