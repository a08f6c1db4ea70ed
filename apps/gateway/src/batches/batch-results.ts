import { AppError, type SerializedError } from '@fastvlm/contracts';
import { requestLineId } from '@fastvlm/batches';
import type { JobRecord } from '@fastvlm/jobs';
import { completionId, toChatCompletion } from '../chat/completion';
import { toHttpError } from '../http/errors';

/** A line of the output or error file, with the tokens it used. */
export interface ResultLine {
  kind: 'o' | 'e';
  line: string;
  promptTokens: number;
  completionTokens: number;
}

/** The line of a request whose job ended: its chat completion, or the error a single request would have got. */
export function lineOfJob(batchId: string, index: number, customId: string, job: JobRecord): ResultLine {
  const id = requestLineId(batchId, index);
  if (job.status === 'succeeded' && job.result) {
    const body = toChatCompletion(completionId(job.id), job.result);
    const line = JSON.stringify({ id, custom_id: customId, response: { status_code: 200, request_id: job.id, body }, error: null });
    return { kind: 'o', line, promptTokens: job.result.usage.promptTokens, completionTokens: job.result.usage.completionTokens };
  }
  const error: SerializedError = job.error ?? (job.status === 'cancelled' ? { code: 'cancelled', message: 'The request was cancelled.' } : { code: 'internal', message: 'The request ended without a result.' });
  return lineOfError(batchId, index, customId, new AppError(error.code, error.message, error.param), job.id);
}

/** The error line of a request that was refused when it was fed (the same status and body as a single request). */
export function lineOfError(batchId: string, index: number, customId: string, e: unknown, requestId: string | null): ResultLine {
  const http = toHttpError(e);
  const line = JSON.stringify({ id: requestLineId(batchId, index), custom_id: customId, response: { status_code: http.status, request_id: requestId, body: http.body }, error: null });
  return { kind: 'e', line, promptTokens: 0, completionTokens: 0 };
}

/** The error line of a request the batch never ran, or stopped, because it expired or was cancelled (OpenAI's `batch_expired`, `batch_cancelled`). */
export function lineOfUnrun(batchId: string, index: number, customId: string, why: 'expired' | 'cancelled'): ResultLine {
  const error =
    why === 'expired'
      ? { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' }
      : { code: 'batch_cancelled', message: 'This request was not executed because the batch was cancelled.' };
  return { kind: 'e', line: JSON.stringify({ id: requestLineId(batchId, index), custom_id: customId, response: null, error }), promptTokens: 0, completionTokens: 0 };
}
