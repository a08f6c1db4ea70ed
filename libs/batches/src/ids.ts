import { createHash, randomBytes } from 'node:crypto';

/** OpenAI-style file id (`file-…`), random: ids reveal nothing and cannot be guessed. */
export function newFileId(): string {
  return `file-${randomBytes(16).toString('base64url')}`;
}

export function isFileId(id: string): boolean {
  return /^file-[A-Za-z0-9_-]{22}$/.test(id);
}

export function newBatchId(): string {
  return `batch_${randomBytes(16).toString('base64url')}`;
}

export function isBatchId(id: string): boolean {
  return /^batch_[A-Za-z0-9_-]{22}$/.test(id);
}

/**
 * The job that runs request `index` of a batch. Deterministic, so that a runner
 * that crashed between feeding a request and noting it can tell whether the
 * job exists, and never runs one request twice.
 */
export function requestJobId(batchId: string, index: number): string {
  return `job_${createHash('sha256').update(`${batchId}:${index}`).digest('base64url').slice(0, 22)}`;
}

/** The `id` of a request's line in the output or error file (`batch_req_…`), deterministic like its job. */
export function requestLineId(batchId: string, index: number): string {
  return `batch_req_${createHash('sha256').update(`line:${batchId}:${index}`).digest('base64url').slice(0, 22)}`;
}
