import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '@fastvlm/contracts';

/**
 * JSON bodies must be valid UTF-8. Decoding first and parsing after would
 * turn invalid bytes into U+FFFD silently, so the bytes are checked, then
 * parsed by Fastify's own parser (which refuses `__proto__` and `constructor`
 * poisoning). The body limit is enforced while the body streams in, before
 * this runs.
 */
export function utf8JsonParser(fastify: FastifyInstance): (req: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => void {
  const parse = fastify.getDefaultJsonParser('error', 'error');
  return (req, body, done) => {
    if (!isUtf8(body)) {
      done(new AppError('invalid_request', 'The request body is not valid UTF-8.'));
      return;
    }
    void parse(req, body.toString('utf8'), done);
  };
}
