import { AppError, isAppError } from '@fastvlm/contracts';
import type { BatchError } from '@fastvlm/batches';
import { parseChatBody, type ChatRequest } from '../chat/openai-request';

/** Longest `custom_id` kept (it is echoed in every output line). */
const MAX_CUSTOM_ID = 512;

/** One request of a batch's input file. */
export interface BatchRequest {
  customId: string;
  request: ChatRequest;
}

/** A line the batch refuses; `line` is 1-based, as in OpenAI's batch errors. */
export class BatchLineError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly param: string | null,
    readonly line: number,
  ) {
    super(message);
  }

  toBatchError(): BatchError {
    return { code: this.code, message: this.message, param: this.param, line: this.line };
  }
}

/**
 * Parses one JSONL line `{custom_id, method: "POST", url, body}` whose body is a
 * chat-completions request, into the request the gateway runs. `index` is 0-based.
 */
export function parseBatchLine(bytes: Buffer, index: number, endpoint: string): BatchRequest {
  const line = index + 1;
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new BatchLineError('invalid_json_line', 'This line is not parseable as valid JSON.', null, line);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BatchLineError('invalid_json_line', 'Each line must be a JSON object.', null, line);
  const o = v as Record<string, unknown>;
  for (const k of ['custom_id', 'method', 'url', 'body']) {
    if (o[k] === undefined || o[k] === null) throw new BatchLineError('missing_required_parameter', `Missing required parameter: '${k}'.`, k, line);
  }
  const customId = o.custom_id;
  if (typeof customId !== 'string' || customId.length === 0 || Buffer.byteLength(customId) > MAX_CUSTOM_ID) {
    throw new BatchLineError('invalid_value', `custom_id must be a non-empty string of at most ${MAX_CUSTOM_ID} bytes.`, 'custom_id', line);
  }
  if (o.method !== 'POST') throw new BatchLineError('invalid_value', 'method must be "POST".', 'method', line);
  if (o.url !== endpoint) throw new BatchLineError('mismatched_url', `url must be the batch's endpoint, "${endpoint}".`, 'url', line);
  try {
    const request = parseChatBody(o.body);
    if (request.stream) throw new AppError('invalid_request', 'Batch requests do not stream.', 'stream');
    return { customId, request };
  } catch (e) {
    throw fromAppError(e, line);
  }
}

/** A request's body failed a check (text, image, model): the same error a single request would get, placed on its line. */
export function fromAppError(e: unknown, line: number): BatchLineError {
  if (e instanceof BatchLineError) return e;
  if (!isAppError(e)) throw e;
  return new BatchLineError(e.code, e.message, e.param ? `body.${e.param}` : 'body', line);
}
