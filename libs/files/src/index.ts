export * from './blob-store';
export * from './dir-blob-store';
export * from './s3-blob-store';
export * from './files-config';
export * from './test-s3-server';
