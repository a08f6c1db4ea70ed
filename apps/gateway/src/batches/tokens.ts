/** Injection tokens of the Files and Batch API. */
export const BLOB_STORE = Symbol('BlobStore');
export const FILE_RECORDS = Symbol('FileRecords');
export const BATCH_STORE = Symbol('BatchStore');
export const BATCH_CONTEXT = Symbol('BatchContext');
