import { pino, type DestinationStream, type Logger } from 'pino';
import { activeIds } from './tracing/spans';

/**
 * Fields that never reach a log line: credentials (Authorization headers, API
 * keys) and user content (questions, answers, images, request bodies). Paths
 * cover the field at the top level and one level down (`err.question`,
 * `req.headers.authorization`).
 */
export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  'request.headers.authorization',
  '*.authorization',
  'apiKey',
  '*.apiKey',
  'api_key',
  '*.api_key',
  'key',
  '*.key',
  'token',
  '*.token',
  'question',
  '*.question',
  'messages',
  '*.messages',
  'prompt',
  '*.prompt',
  'text',
  '*.text',
  'answer',
  '*.answer',
  'image',
  '*.image',
  'body',
  '*.body',
];

export interface LoggerOptions {
  /** `gateway`, `worker`, ... */
  name: string;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  level: string;
  /** Where lines go; stdout by default. */
  destination?: DestinationStream;
}

/**
 * JSON logs. Every line written while a request or job is being handled
 * carries its `request_id` and `trace_id` (and `span_id`), taken from the
 * active OpenTelemetry context, so gateway and worker lines of one request
 * can be found together and next to its trace.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      mixin: () => activeIds(),
    },
    opts.destination,
  );
}
