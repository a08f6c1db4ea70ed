export * from './ids';
export * from './line-reader';
export * from './file-records';
export * from './batch-store';
