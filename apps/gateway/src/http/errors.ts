import { AppError, isAppError, type ErrorCode } from '@fastvlm/contracts';
import { isConnectionError } from '@fastvlm/jobs';
import { LimitExceeded } from '@fastvlm/security';
import { limitExceededHeaders } from '../limits/rate-limit-headers';

export interface HttpError {
  status: number;
  body: { error: { message: string; type: string; code: string; param: string | null } };
  headers: Record<string, string>;
}

/** HTTP status of each error code: the one place where domain errors meet HTTP. */
export function statusOf(code: ErrorCode): number {
  switch (code) {
    case 'invalid_request':
    case 'invalid_image':
    case 'image_url_not_enabled':
    case 'image_fetch_failed':
      return 400;
    case 'unauthorized':
      return 401;
    case 'forbidden':
      return 403;
    case 'not_found':
    case 'model_not_found':
      return 404;
    case 'idempotency_conflict':
    case 'conflict':
    case 'cancelled':
      return 409;
    case 'payload_too_large':
      return 413;
    case 'rate_limited':
      return 429;
    case 'service_unavailable':
    case 'overloaded':
      return 503;
    case 'timeout':
      return 504;
    case 'worker_lost':
    case 'enqueue_lost':
      return 502;
    case 'model_load_failed':
    case 'internal':
      return 500;
  }
}

function typeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 503) return 'service_unavailable_error';
  return status < 500 ? 'invalid_request_error' : 'server_error';
}

/** Fastify's own errors (body parsing, limits) that can reach us before any handler runs. */
function fromFramework(e: { code?: string; statusCode?: number; message: string }): AppError | null {
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
    case 'FST_PARTS_LIMIT':
    case 'FST_FILES_LIMIT':
    case 'FST_FIELDS_LIMIT':
      return new AppError('payload_too_large', 'The request body is larger than this server accepts.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new AppError('invalid_request', 'Unsupported Content-Type: send application/json or multipart/form-data.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new AppError('invalid_request', 'The request body is not valid JSON.');
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return new AppError('invalid_request', 'The request is not multipart/form-data.');
    default:
      break;
  }
  if (e instanceof SyntaxError || e.statusCode === 400) return new AppError('invalid_request', e.message);
  if (e.statusCode === 413) return new AppError('payload_too_large', 'The request body is larger than this server accepts.');
  if (e.statusCode === 415) return new AppError('invalid_request', e.message);
  return null;
}

/** Maps anything thrown while serving a request to an OpenAI-shaped error. */
export function toHttpError(e: unknown): HttpError {
  let err: AppError;
  if (isAppError(e)) err = e;
  else if (isConnectionError(e)) err = new AppError('service_unavailable', 'The queue is unavailable; try again shortly.');
  else if (e instanceof Error && fromFramework(e)) err = fromFramework(e) as AppError;
  else err = new AppError('internal', 'Internal server error.');
  const status = statusOf(err.code);
  const headers: Record<string, string> = {};
  if (status === 503) headers['retry-after'] = '5';
  if (err instanceof LimitExceeded) Object.assign(headers, limitExceededHeaders(err));
  return {
    status,
    body: { error: { message: err.message, type: typeOf(status), code: err.code, param: err.param ?? null } },
    headers,
  };
}
