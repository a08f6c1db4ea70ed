/**
 * Every failure the product reports has one of these codes. The gateway maps
 * codes to HTTP statuses in one exception filter; the worker maps them to
 * retry / no-retry in one place. Libraries throw `AppError`, never HTTP errors.
 */
export const ERROR_CODES = [
  'invalid_request',
  'invalid_image',
  'image_url_not_enabled',
  'unauthorized',
  'forbidden',
  'not_found',
  'payload_too_large',
  'idempotency_conflict',
  /** The resource is in a state that does not allow the operation (cancelling a batch that already ended). */
  'conflict',
  'service_unavailable',
  'rate_limited',
  'overloaded',
  'image_fetch_failed',
  'model_not_found',
  'model_load_failed',
  'timeout',
  'cancelled',
  /** The job's worker died or lost it too many times (BullMQ's stalled limit); a poison input often causes this. */
  'worker_lost',
  /** The job never reached the queue (the gateway failed between creating its record and enqueueing it). */
  'enqueue_lost',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Whether a job that failed with this code may succeed if run again.
 * Admission refusals (`rate_limited`, `overloaded`) happen at the gateway
 * before a job exists: the client retries them, never the queue.
 */
export function isRetryable(code: ErrorCode): boolean {
  switch (code) {
    case 'service_unavailable':
    case 'internal':
      return true;
    case 'invalid_request':
    case 'invalid_image':
    case 'image_url_not_enabled':
    case 'unauthorized':
    case 'forbidden':
    case 'not_found':
    case 'payload_too_large':
    case 'rate_limited':
    case 'overloaded':
    case 'image_fetch_failed':
    case 'idempotency_conflict':
    case 'conflict':
    case 'model_not_found':
    case 'model_load_failed':
    case 'timeout':
    case 'cancelled':
    case 'worker_lost':
    case 'enqueue_lost':
      return false;
  }
}

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field the error is about, when there is one (e.g. `messages[0].content`). */
    readonly param?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AppError';
  }

  toJSON(): SerializedError {
    return { code: this.code, message: this.message, ...(this.param ? { param: this.param } : {}) };
  }
}

export interface SerializedError {
  code: ErrorCode;
  message: string;
  param?: string;
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
