import { pino, type Logger } from 'pino';

export const LOGGER = Symbol('Logger');

/** JSON logs; credentials and user content never reach them. */
export function createLogger(level: string): Logger {
  return pino({
    name: 'gateway',
    level,
    redact: {
      paths: ['req.headers.authorization', 'headers.authorization', 'authorization', '*.apiKey', 'question', '*.question'],
      censor: '[redacted]',
    },
  });
}
