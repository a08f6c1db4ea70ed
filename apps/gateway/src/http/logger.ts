import type { Logger } from 'pino';
import { createLogger as createJsonLogger } from '@fastvlm/observability';

export const LOGGER = Symbol('Logger');

/** JSON logs with request and trace ids; credentials and user content never reach them. */
export function createLogger(level: string): Logger {
  return createJsonLogger({ name: 'gateway', level });
}
