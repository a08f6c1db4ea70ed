import { ERROR_CODES, type ErrorCode, type SerializedError } from '@fastvlm/contracts';
import type { JobStore, TransitionOutcome } from './job-store';

/** BullMQ's failed reason for a job that stalled more than `maxStalledCount` times (moveStalledJobsToWait). */
export const STALLED_LIMIT_REASON = 'job stalled more than allowable limit';

/**
 * The record's error for a job the queue failed, read back from BullMQ's
 * failed reason: a stall past the limit means its workers kept dying
 * (`worker_lost`); a reason the worker wrote (`code: message`, see
 * `JobFailure`) keeps its code; anything else is `internal`.
 */
export function failureFromReason(failedReason: string | undefined): SerializedError {
  const reason = failedReason ?? '';
  if (reason === STALLED_LIMIT_REASON) {
    return {
      code: 'worker_lost',
      message: 'The job was lost by its workers more times than allowed (each one stopped while running it); it is not retried.',
    };
  }
  const m = /^([a-z_]+): (.*)$/s.exec(reason);
  const code = ERROR_CODES.find((c): c is ErrorCode => c === m?.[1]);
  if (m && code) return { code, message: m[2] ?? '' };
  return { code: 'internal', message: reason === '' ? 'The queue failed the job without a reason.' : `The queue failed the job: ${reason}` };
}

export interface ReconcilerOptions {
  /** Writes tried per event before giving up (the record's TTL still ends it). Default 4. */
  tries?: number;
  /** Milliseconds before the first retry, doubled after each. Default 500. */
  retryMs?: number;
  /** Told about each record the reconciler ended, and about writes it gave up on. */
  onReconciled?: (jobId: string, error: SerializedError) => void;
  onGiveUp?: (jobId: string, err: unknown) => void;
}

/**
 * Ends the record of a job the queue ended: every BullMQ terminal state
 * (failed, completed) becomes a terminal record. It runs in every worker on
 * the queue's event stream (QueueEvents), so it does not depend on the process
 * that made the failure surviving it; each write is the store's atomic, idempotent
 * failure transition, so several workers reconciling the same event write once.
 */
export class JobReconciler {
  private readonly tries: number;
  private readonly retryMs: number;

  constructor(
    private readonly store: JobStore,
    private readonly now: () => number,
    private readonly opts: ReconcilerOptions = {},
  ) {
    this.tries = opts.tries ?? 4;
    this.retryMs = opts.retryMs ?? 500;
  }

  /** The queue failed the job for good: a record still queued or running fails with the reason's code. */
  failed(jobId: string, failedReason: string | undefined): Promise<TransitionOutcome | null> {
    return this.end(jobId, failureFromReason(failedReason));
  }

  /**
   * The queue completed the job. A run always ends the record before it
   * returns (or finds it ended, or held by a newer run), so an open record
   * here is a defect; it still must not stay open.
   */
  completed(jobId: string): Promise<TransitionOutcome | null> {
    return this.end(jobId, { code: 'internal', message: 'The queue completed the job without a stored result.' });
  }

  private async end(jobId: string, error: SerializedError): Promise<TransitionOutcome | null> {
    for (let i = 0; ; i++) {
      try {
        const outcome = await this.store.fail(jobId, error, this.now());
        if (outcome.ok) this.opts.onReconciled?.(jobId, error);
        return outcome;
      } catch (e) {
        if (i + 1 >= this.tries) {
          this.opts.onGiveUp?.(jobId, e);
          return null;
        }
        await new Promise((r) => setTimeout(r, this.retryMs * 2 ** i));
      }
    }
  }
}
