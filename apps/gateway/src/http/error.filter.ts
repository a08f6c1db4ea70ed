import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '@fastvlm/contracts';
import { toHttpError } from './errors';
import { LOGGER } from './logger';

/** Every error leaves the gateway in OpenAI's shape, with the status its code maps to. */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const e = exception instanceof HttpException ? fromNest(exception) : exception;
    const http = toHttpError(e);
    if (http.status >= 500) this.log.error({ err: exception }, 'request failed');
    if (reply.sent || reply.raw.headersSent) return;
    void reply.code(http.status).headers(http.headers).send(http.body);
  }
}

/** Nest's own exceptions (unknown route, etc.). */
function fromNest(e: HttpException): unknown {
  const status = e.getStatus();
  if (status === 404) return new AppError('not_found', 'No such route.');
  if (status === 401 || status === 403) return new AppError('unauthorized', e.message);
  if (status === 413) return new AppError('payload_too_large', 'The request body is larger than this server accepts.');
  if (status < 500) return new AppError('invalid_request', e.message);
  return e;
}
